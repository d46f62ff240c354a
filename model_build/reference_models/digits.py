"""A small CNN trained at build time on scikit-learn's bundled handwritten digits.

Real data (1,797 8x8 images, shipped inside the scikit-learn wheel), seconds of CPU.
"""

from __future__ import annotations

import numpy as np

from model_build.spec import EvalData, ModelSpec

SEED = 0
EPOCHS = 30


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
    import torch
    from torch import nn

    torch.manual_seed(SEED)
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
    generator = torch.Generator().manual_seed(SEED)
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
        module=model,
        example_inputs={"image": x_test[:2]},
        output_names=["probabilities", "label"],
        max_batch_size=256,
        eval_data=EvalData(
            inputs={"image": x_test}, labels=y_test, dataset="sklearn load_digits (20% held out)"
        ),
        classifier_output="probabilities",
        labels=[str(digit) for digit in range(10)],
    )
