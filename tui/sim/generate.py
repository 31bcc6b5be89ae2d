"""Deterministic scenarios: the same seed gives the same scenario."""

from __future__ import annotations

import random
import uuid

from .scenario import (
    CURVES,
    PROVIDERS,
    VARIANTS,
    Fault,
    ProviderSpec,
    Scenario,
    SimTask,
    build_scenario,
    sim_task,
)

UPSCAYL_MODELS = ("upscayl-standard-4x", "digital-art-4x", "natural-plus-4x", "clear-boost-4x", "texture-boost-4x")
QOLABA_APPS = ("text-to-image", "image-to-image", "background-removal", "upscaling")
EVOLINK_MODELS = (("gpt-image-1", "image"), ("seedream-4.0", "image"), ("wan2.5-text-to-video", "video"),
                  ("veo3-fast", "video"), ("suno-v4.5", "audio"))
ERRORS = {
    "comfy": ("Relight failed: source image could not be decoded", "Upstream provider error"),
    "upscayl": ("Image dimensions exceed the maximum allowed", "Processing failed: unsupported color profile"),
    "qolaba": ("CUDA out of memory. Tried to allocate 2.00 GiB", "NSFW content detected in output"),
    "freepik": ("Generation failed: prompt rejected by safety filter", "Internal generation error"),
    "evolink": ("content_policy_violation: the prompt was flagged", "generation_timeout: model took too long"),
}
# Provider text is hostile until cleaned: one failure says this.
HOSTILE_ERROR = "\x1b[2J\x1b]52;c;cHduZWQ=\x07[bold red]GPU on fire[/] \u202eevil\u202c see http://x.invalid"


def _id(rng: random.Random, provider: str, created: float) -> str:
    if provider == "upscayl":
        alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
        return "".join(rng.choices(alnum, k=9)) + "-" + "".join(rng.choices(alnum, k=10))
    if provider == "evolink":
        alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
        return f"task-unified-{1756817821 + int(created) + rng.randrange(10**6)}-{''.join(rng.choices(alnum, k=8))}"
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def generate(seed: int = 7, n_tasks: int = 50, *, horizon: float = 60.0, fail_rate: float = 0.15,
             providers: tuple[str, ...] = PROVIDERS, faults: bool = True,
             budgets: dict[str, str] | None = None, epoch: float | None = None,
             arrivals: bool = False, real: bool = False, strict: bool = False) -> Scenario:
    """A mix of tasks across ``providers`` whose lifecycles unfold over the
    first ``horizon`` sim seconds (many change state within the first 5 s),
    about ``fail_rate`` of them failing, a few already finished, one that
    expires (404) at t=5, and with ``faults``: a rate-limit episode on one
    provider from t=3 to t=11, a short 5xx burst and an HTML 502 on others.

    Every task exists from t=0 (submitted before the simulator started; the
    later ones wait queued), so its id can be tracked at once.  With
    ``arrivals`` some are created later (404 until then), as new submissions
    that only a list endpoint would reveal.

    With ``real`` the published variants are mixed in (see ``real_variants``);
    ``strict`` serves only the seed documents' endpoints.  The tasks of a seed
    are the same either way: only kinds, variants and one fault change."""
    rng = random.Random(seed)
    specs = {}
    for p in providers:
        variant = rng.choice(VARIANTS[p])
        if p == "qolaba":
            # A failure must be one a client can confirm: a 200 FAILED.  The "500" form is no
            # proof (the backend answers every exception so, issue 11); faults play it instead.
            variant = "200"
        specs[p] = ProviderSpec(key=f"sim-{p}-{rng.getrandbits(48):012x}", variant=variant,
                                budget=(budgets or {}).get(p))
    tasks: list[SimTask] = []
    hostile_done = False
    expired_done = False
    for i in range(n_tasks):
        p = providers[i % len(providers)]
        if i % 7 == 3:  # finished before the sim started
            end = -rng.uniform(1, 120)
            start = end - rng.uniform(5, 40)
            created = start - rng.uniform(0.5, 10)
        else:
            created = rng.uniform(-0.25 * horizon, 0.6 * horizon)
            start = created + rng.uniform(0.5, 0.12 * horizon)
            long = p == "evolink" and rng.random() < 0.3
            end = start + rng.uniform(0.05 * horizon, (1.5 if long else 0.5) * horizon)
            if not arrivals and created > 0:
                created = -rng.uniform(0.5, 5)
        roll = rng.random()
        end_state = "failed" if roll < fail_rate else (
            "cancelled" if roll < fail_rate + 0.03 and p in ("freepik", "qolaba") else "succeeded")
        kind = model = None
        if p == "freepik" and rng.random() < 0.25:
            kind = "mystic"
        elif p == "upscayl":
            model = rng.choice(UPSCAYL_MODELS)
        elif p == "qolaba":
            model = rng.choice(QOLABA_APPS)
        elif p == "evolink":
            model, kind = rng.choice(EVOLINK_MODELS)
        task_id = _id(rng, p, created)
        ext = {"video": "mp4", "audio": "mp3"}.get(kind or "", "png")
        n_results = rng.choice((1, 1, 1, 2, 4)) if end_state == "succeeded" else 0
        error = None
        if end_state == "failed":
            if not hostile_done and i >= len(providers):
                error, hostile_done = HOSTILE_ERROR, True
            else:
                error = rng.choice(ERRORS[p])
        expires = None
        if end < 0 and end_state == "succeeded" and not expired_done:
            expires, expired_done = 5.0, True
        credits = {"comfy": round(rng.uniform(5, 40)), "upscayl": rng.randint(1, 10),
                   "qolaba": round(rng.uniform(0.5, 5), 2), "freepik": rng.randint(10, 100),
                   "evolink": round(rng.uniform(0.5, 25), 1)}[p]
        tasks.append(SimTask.model_construct(  # valid by construction: skip validating 100k tasks
            provider=p, task_id=task_id, kind=kind, model=model,
            created=round(created, 3), start=round(start, 3), end=round(end, 3),
            end_state=end_state, curve=rng.choice(CURVES), expires=expires,
            results=[f"https://sim.tasktui.invalid/{p}/{task_id}/{k}.{ext}" for k in range(n_results)],
            error=error, credits=credits, peak=None, ref_id=None, variant=None,
        ))
    _ensure_variety(rng, tasks)
    fault_list: list[Fault] = []
    if faults and providers:
        calm = [p for p in providers if p != "upscayl"] or list(providers)
        limited = rng.choice(calm)
        kind = "rate_limit_text" if limited == "evolink" else "rate_limit"
        fault_list.append(Fault(kind=kind, provider=limited, start=3.0, end=11.0, retry_after=3.0))
        others = [p for p in providers if p != limited] or list(providers)
        fault_list.append(Fault(kind="server_error", provider=rng.choice(others), start=6.0,
                                status=rng.choice((500, 503)), count=2))
        fault_list.append(Fault(kind="html_502", provider=rng.choice(others), start=9.0, count=1))
    scenario = Scenario(seed=seed, epoch=epoch, providers=specs, tasks=tasks, faults=fault_list, strict=strict)
    return real_variants(scenario, seed) if real else scenario


COMFY_FLAVORS = ("", "task_status", "lower", "task_status+lower")
UPSCAYL_FLAVORS = ("", "path_only", "uncharged", "path_only+uncharged")
SKIN_MODES = ("skin-enhancer/creative", "skin-enhancer/faithful", "skin-enhancer/flexible")


def real_variants(scenario: Scenario, seed: int = 7) -> Scenario:
    """The variants published beyond the seeds, mixed into ``scenario`` (its own
    random stream, so the tasks' timelines stay as they were): Comfy answers
    with ``task_status`` and ComfyUI's lower-case words; about one in four
    Comfy/Freepik tasks created as skin-enhancer/<mode> (polled at
    skin-enhancer/{id}); Upscayl files with ``path`` only and uncharged
    credits; Qolaba's backend shape; one Qolaba task behind two
    infrastructure 500s before it answers."""
    rng = random.Random(seed * 7919 + 1)
    tasks = []
    for t in scenario.tasks:
        update: dict = {}
        if t.provider in ("comfy", "freepik") and t.kind is None and rng.random() < 0.25:
            update["kind"] = rng.choice(SKIN_MODES)
        if t.provider == "comfy":
            update["variant"] = rng.choice(COMFY_FLAVORS) or None
        elif t.provider == "upscayl":
            update["variant"] = rng.choice(UPSCAYL_FLAVORS) or None
        elif t.provider == "qolaba":
            update["variant"] = "backend"
        tasks.append(t.model_copy(update=update) if update else t)
    faults = list(scenario.faults)
    alive = [t for t in tasks if t.provider == "qolaba" and t.end_state == "succeeded" and t.expires is None]
    if alive:
        faults.append(Fault(kind="infra_error", provider="qolaba", task_id=rng.choice(alive).task_id,
                            endpoint="status", count=2))
    return scenario.model_copy(update={"tasks": tasks, "faults": faults})


def _ensure_variety(rng: random.Random, tasks: list[SimTask]) -> None:
    """Every provider with 4+ tasks gets a failure, Freepik and Qolaba a cancellation."""
    for p in PROVIDERS:
        mine = [t for t in tasks if t.provider == p]
        if len(mine) < 4:
            continue
        wanted = ["failed"] + (["cancelled"] if p in ("freepik", "qolaba") else [])
        for state in wanted:
            if any(t.end_state == state for t in mine):
                continue
            pool = [t for t in mine if t.end_state == "succeeded" and t.expires is None]
            if len(pool) < 2:
                continue
            t = rng.choice(pool)
            t.end_state, t.results = state, []
            t.error = rng.choice(ERRORS[p]) if state == "failed" else None


def small_scenario() -> Scenario:
    """A small, readable scenario for tests: keys ``sim-key-<provider>``; at
    t=0 every provider has ``<p>-queued``, ``<p>-running`` (50 %, ends t=30),
    ``<p>-done`` (succeeded, one result), ``<p>-failed`` (error "simulated
    failure"); plus ``freepik-cancelled`` and ``evolink-expired`` (404).
    No faults."""
    tasks = []
    for p in PROVIDERS:
        for state in ("queued", "running", "succeeded", "failed"):
            name = "done" if state == "succeeded" else state
            tasks.append(sim_task(p, f"{p}-{name}", state))
    tasks.append(sim_task("freepik", "freepik-cancelled", "cancelled"))
    tasks.append(sim_task("evolink", "evolink-expired", "expired"))
    return build_scenario(*tasks)
