"""Server-side settings, read once from the environment (prefix BPTT_LAB_), typed and bounded.

    BPTT_LAB_WORKERS=2 BPTT_LAB_POOL=thread streamlit run streamlit_app.py

The defaults suit one 2-core machine serving a class: one training worker per core, each
with one torch thread, and a queue in front of them.
"""
from __future__ import annotations

import functools
import os
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

CORES = os.cpu_count() or 1


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BPTT_LAB_", extra="ignore")

    # One worker per core: a third job on 2 cores only slows the other two (measured in bench/bench_service.py).
    workers: int = Field(CORES, ge=1, le=64, description="Training jobs that run at once; the rest wait in the queue.")
    # Processes: four default runs on 2 cores took 1.8x one run with processes, 2.4x with threads (the GIL).
    pool: Literal["process", "thread"] = Field("process", description="Where jobs train: worker processes or threads.")
    max_queue: int = Field(64, ge=0, le=10_000, description="Jobs that may wait; one more is refused with a message.")
    # A tab that stops polling for this long, and whose websocket Streamlit no longer holds, is gone:
    # its job is stopped and saved, never orphaned. A connected tab that polls late keeps its run.
    abandon_after_s: float = Field(30.0, gt=0, le=86_400,
                                   description="Stop a job whose page has not polled for this long and has disconnected.")
    # A page still connected but silent (a browser starved by a class on 2 cores polls late, or the
    # tab moved to another page) keeps its run this long: a worker is never held for nobody for ever.
    abandon_connected_after_s: float = Field(
        300.0, gt=0, le=86_400, description="Stop a job whose page is connected but has not polled for this long.")
    # One intra-op thread per job: two OpenMP threads on a busy 2-core machine made steps 8x slower.
    torch_threads: int = Field(1, ge=1, le=64, description="torch intra-op threads of each training job.")
    max_job_mb: int = Field(3072, ge=64, le=1_000_000, description="Refuse a config whose estimated memory is larger.")
    max_step_s: float = Field(1.5, gt=0, le=3600, description="Refuse a config whose estimated step takes longer.")
    # 2^24: T=2000 × H=256 × B=32 × 1 layer fits (≈ 2.2 GB for an LSTM); twice that is over the memory limit anyway.
    max_shape: int = Field(16_777_216, ge=1, le=10**12, description="Refuse a CPU config whose seq_len × hidden_size "
                           "× batch_size × layers (× 2 when bidirectional) is larger.")
    # Rows of ‖∂L/∂h_t‖ a page keeps per run (its heatmap); older ones are thinned, evenly spaced from step 0.
    history_rows: int = Field(500, ge=2, le=100_000, description="Recorded steps a session keeps per run for its charts.")
    # A session holds at most 5 runs (Explore, 4 Compare columns): 5 × 32 MB of heatmap rows at most.
    history_mb: int = Field(32, ge=1, le=4096, description="MB of recorded rows a session keeps per run.")
    # Streamlit's own server.maxUploadSize (.streamlit/config.toml) caps the upload; this is what import reads.
    max_upload_mb: int = Field(200, ge=1, le=1024, description="Largest run archive the Runs page imports, in MB.")
    # 0: as the server. At 10 a default run took 7.3 s instead of 5.1 s in a browser on the same 2
    # cores (bench/bench_app.py), and a Stop reached the server no sooner: the browser was the wait.
    worker_nice: int = Field(0, ge=0, le=19, description="nice level of worker processes (higher yields the CPU).")
    # Every poll is a redraw in the browser. With the browser on the same 2 cores as the training, Chromium
    # used 3.85 CPU-s for a default run polled every 0.5 s and 2.6-2.9 every 1.0 s (bench/bench_app.py).
    # Where browsers run on the students' own machines, 0.5 is smoother.
    poll_s: float = Field(1.0, ge=0.1, le=10, description="How often a page redraws a live run, in seconds "
                          "(longer while many runs are live).")
    # Batches of steps sent from a worker to the pages: often enough for live charts, rarely enough to stay cheap.
    publish_every_s: float = Field(0.1, gt=0, le=10, description="How often a job publishes its new steps.")
    # Class rooms (rnn_core/rooms.py): a class of 30 with room to spare, a lesson's length with a break.
    room_size: int = Field(60, ge=1, le=1000, description="Members a class room takes; one more is refused.")
    room_expire_h: float = Field(4.0, gt=0, le=720, description="A class room expires after this many hours without activity.")
    room_posts: int = Field(20, ge=1, le=1000, description="Results kept per member of a class room (the latest).")
    # Unset: the workers are processes of this server. Set (auto, HOST:PORT): they are Ray actors on that
    # cluster (pip install -r requirements-ray.txt); several machines need the run store on a shared path.
    ray_address: str | None = Field(None, max_length=200, description="Ray cluster that trains the jobs (auto or HOST:PORT).")


def load_settings() -> ServiceSettings:
    """The settings, or a clear error naming the bad variable (never a traceback at server start).

    Read again only when a BPTT_LAB_ variable changed. pydantic-settings takes about half a
    millisecond to build one on a quiet machine, and every new History asks for its caps: when a
    class's 30 clicks came in the same second, this was a quarter of the time they held the
    interpreter lock (py-spy, during bench/bench_class.py). Each caller gets its own copy, so one
    that changes a field changes only its own."""
    env = tuple(sorted((k.upper(), v) for k, v in os.environ.items() if k.upper().startswith("BPTT_LAB_")))
    return _load_settings(env).model_copy()


@functools.lru_cache(maxsize=16)
def _load_settings(env: tuple[tuple[str, str], ...]) -> ServiceSettings:
    from pydantic import ValidationError

    try:
        return ServiceSettings()
    except ValidationError as err:
        bad = "; ".join(f"BPTT_LAB_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in err.errors())
        raise ValueError(f"bad server setting: {bad}") from None
