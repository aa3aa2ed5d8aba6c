import torch

import agreement
from imstats.dataset import get_reader

reader, splits, data = get_reader("sample"), {}, {}  # 3 000 + 1 000 embedded Fashion-MNIST
for s in ("train", "test"):
    images, labels, _ = reader.arrays(s)
    splits[s] = ([r.id for r in reader.examples(s)], labels)  # imstats ids: the tables join
    data[s] = (torch.tensor(images).float().unsqueeze(1) / 255, torch.tensor(labels))

rec = agreement.Recorder("runs/mine", models=2, splits=splits, epochs=2, dataset=reader)
for k in range(2):
    torch.manual_seed(k)
    net = agreement.build_model("lenet5", 10, in_channels=1, input_size=28)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(rec.last_epoch(model=k) + 1, 3):  # a rerun resumes: restore your checkpoint
        for s, (x, y) in data.items():
            net.train(s == "train")
            for pos in torch.randperm(len(y)).split(64):
                with torch.set_grad_enabled(s == "train"):
                    logits = net(x[pos])
                rec.record(split=s, model=k, epoch=epoch, index=pos, output=logits)  # or classes
                if s == "train":
                    opt.zero_grad()
                    torch.nn.functional.cross_entropy(logits, y[pos]).backward()
                    opt.step()
        rec.end_epoch(model=k, epoch=epoch)  # checks that every example was recorded, commits
