"""Stores filled with many tasks, for the benchmarks."""

from __future__ import annotations

import random
import time
from pathlib import Path

from tui.model import PROVIDERS, STATES, Task

MODELS = ("gpt-4o-image", "upscayl-standard-4x", "flux-dev", "wan2.5", "hyperflux", "relight-v2")


def fill_store(path: Path, n: int, *, seed: int = 1, finished: bool = False):
    """A Store at ``path`` holding ``n`` tasks spread over providers and states."""
    from tui.store import Store

    rng = random.Random(seed)
    store = Store(path)
    now = time.time()
    per = {p: [] for p in PROVIDERS}
    for i in range(n):
        provider = PROVIDERS[i % len(PROVIDERS)]
        per[provider].append(f"{provider[:3]}-{i:07d}-{rng.randrange(16**6):06x}")
    for provider, ids in per.items():
        for start in range(0, len(ids), 20_000):
            store.add(provider, ids[start:start + 20_000], label=f"batch-{start // 20_000}")
    updates = []
    states = ("succeeded", "failed") if finished else STATES[:-1]
    for key in store.keys():
        provider, task_id = key.split(":", 1)
        state = rng.choice(states)
        updates.append(Task(
            provider=provider, task_id=task_id, state=state, provider_status=state.upper(),
            progress=100.0 if state == "succeeded" else float(rng.randrange(100)),
            model=rng.choice(MODELS), created_at=now - rng.randrange(86_400),
            updated_at=now - rng.randrange(3_600),
            results=[f"https://cdn.example.com/{task_id}.png"] if state == "succeeded" else [],
        ))
        if len(updates) >= 20_000:
            store.apply(updates)
            updates = []
    if updates:
        store.apply(updates)
    return store
