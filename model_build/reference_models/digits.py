"""A small CNN trained at build time on scikit-learn's bundled handwritten digits.

Real data (1,797 8x8 images, shipped inside the scikit-learn wheel), seconds of CPU.
"""

from __future__ import annotations

import numpy as np

from model_build.spec import EvalData, ModelSpec
from model_runtime.manifest import PromotionGate

SEED = 0
EPOCHS = 30
# Two trainings from different seeds agree on ~97 % of the held-out digits: a new version
# below 90 % against the live one is more likely a broken build than a better model.
GATE = PromotionGate(metric="top1_agreement", minimum=0.9)


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Images scaled to [0, 1] as (N, 1, 8, 8) float32, and a stratified 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.2, random_state=SEED, stratify=labels
    )
    return x_train, x_test, y_train, y_test


def digits_cnn() -> ModelSpec:
    return trained_digits_cnn(seed=SEED, version="1")


def digits_cnn_v2() -> ModelSpec:
    """The same network trained from another seed: a second version of `digits` to try
    side by side with the first (canary, compare, promote, rollback)."""
    return trained_digits_cnn(seed=SEED + 1, version="2")


def trained_digits_cnn(seed: int, version: str) -> ModelSpec:
    """Train the CNN from `seed` (the train/test split stays the same for every seed)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    x_train, x_test, y_train, y_test = load_split()

    class DigitsCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(16, 32, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
            )
            self.classifier = nn.Sequential(
                nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10)
            )

        def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            probabilities = torch.softmax(self.classifier(self.features(image)), dim=1)
            return probabilities, probabilities.argmax(dim=1)

    model = DigitsCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.NLLLoss()
    images, targets = torch.from_numpy(x_train), torch.from_numpy(y_train)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(EPOCHS):
        for batch in torch.split(torch.randperm(len(images), generator=generator), 64):
            optimizer.zero_grad()
            probabilities, _ = model(images[batch])
            loss = loss_fn(torch.log(probabilities + 1e-9), targets[batch])
            loss.backward()
            optimizer.step()
    model.eval()

    return ModelSpec(
        name="digits",
        version=version,
        module=model,
        example_inputs={"image": x_test[:2]},
        output_names=["probabilities", "label"],
        max_batch_size=256,
        eval_data=EvalData(
            inputs={"image": x_test}, labels=y_test, dataset="sklearn load_digits (20% held out)"
        ),
        classifier_output="probabilities",
        labels=[str(digit) for digit in range(10)],
        promotion_gate=GATE,
    )
