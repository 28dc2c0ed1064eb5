"""Worker processes that each hold the models on one device, for work spread over devices.

A `Pool` has K workers. Each loads CLIP and BigGAN once, when its first task needs them, and keeps
them for every later task. A task is a plain module-level function `fn(host, emit, *args)` run in
a worker: `host.model("clip")` gives the worker's models, `emit(event)` sends a small picklable
event to the driver while the task runs (the pool calls `on_event(worker, event)`, from any
thread), and the return value is the task's result. Backends:

    "ray"      one Ray actor per worker (num_gpus=1 on GPUs): one machine or a cluster
    "process"  one spawned local process per worker (CUDA_VISIBLE_DEVICES gives it its GPU)
    "inline"   the calling process, one task at a time, in the caller's thread (no parallelism)

`submit` returns a concurrent.futures.Future. A worker that dies (killed, out of host memory, a
lost node) fails its task with WorkerDied, and the pool starts a fresh worker for its next task.
In a worker, the `musivid` logger's records come back as LogEvents, which
`relay` logs in the driver through the `musivid.remote` logger.
"""
from __future__ import annotations

import logging
import os
import pickle
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from ..config import ModelConfig, resolve_device
from ..errors import InputError, MusividError

log = logging.getLogger(__name__)
remote_log = logging.getLogger("musivid.remote")  # what workers logged, relayed by the driver

BACKENDS = ("ray", "process", "inline")
Emit = Callable[[Any], None]


class WorkerDied(MusividError):
    """A worker process ended while running a task (killed, out of memory, node lost)."""


@dataclass(frozen=True)
class WorkerSpec:
    """What every worker of a pool holds."""

    models: ModelConfig
    device: str = "auto"  # resolved in the worker, which sees only its own GPU (as cuda:0)
    gpu: bool = False  # one GPU per worker
    threads: int = 0  # torch CPU threads per worker (0: torch's default); results depend on it


@dataclass(frozen=True)
class LogEvent:
    """A record the `musivid` logger got in a worker, on its way to the driver (see `relay`)."""

    level: int
    message: str


class Host:
    """The worker side: the models, loaded once per worker process."""

    def __init__(self, spec: WorkerSpec, index: int, forward_logs: bool = True):
        from ..images.models.cache import ModelCache

        self.spec, self.index = spec, index
        self.pin_threads()
        compute = resolve_device(spec.device)
        self.device, self.amp = compute.device, compute.amp
        self.models = ModelCache()  # the worker's models, for all its tasks (make_video(models=host.models))
        self._emit: Emit | None = None
        if forward_logs:  # a worker process: its messages go to the driver, not to its own stderr
            logger = logging.getLogger("musivid")
            logger.addHandler(_Forward(self))
            logger.setLevel(logging.INFO)
            logger.propagate = False

    def model(self, kind: str, models: ModelConfig | None = None):
        """"clip" or "biggan" of `models` (default: the pool's) on this worker's device, loaded on
        first use and kept in the worker's ModelCache."""
        return self.models.get(kind, models if models is not None else self.spec.models, self.device, self.amp)

    def pin_threads(self) -> None:
        """Give the calling thread the spec's torch thread count. OpenMP keeps the count per
        thread: a thread that did not set it starts from OMP_NUM_THREADS (Ray sets 1 for its
        workers), and oneDNN sizes its kernels, and so the order of its float sums, by the count
        it sees when a kernel is made (the last bits of a result differ on some CPUs)."""
        if self.spec.threads:
            import torch

            torch.set_num_threads(self.spec.threads)

    def run(self, fn: Callable, args: tuple, emit: Emit) -> Any:
        self._emit = emit
        self.pin_threads()  # tasks may run in another thread than the one that made the Host
        try:
            return fn(self, emit, *args)
        finally:
            self._emit = None


class _Forward(logging.Handler):
    def __init__(self, host: Host):
        super().__init__(logging.INFO)
        self.host = host

    def emit(self, record: logging.LogRecord) -> None:
        if self.host._emit is not None:
            self.host._emit(LogEvent(record.levelno, record.getMessage()))


def relay(event: Any, source: str) -> bool:
    """Log a worker's LogEvent here, prefixed with `source`; False for any other event."""
    if not isinstance(event, LogEvent):
        return False
    remote_log.log(event.level, "%s: %s", source, event.message)
    return True


def portable(e: BaseException) -> BaseException:
    """`e` if it survives pickling, else a MusividError carrying its type and message."""
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:  # noqa: BLE001 - any exception type can fail to pickle
        return MusividError(f"{type(e).__name__}: {e}")


def settle(messages, on_event: Callable[[Any], None]) -> Any:
    """Pass a task's ("event", x) messages to on_event until its ("result", x), returned, or its
    ("error", exception), raised; EOFError if the messages end first."""
    for kind, value in messages:
        if kind == "event":
            on_event(value)
        elif kind == "result":
            return value
        else:
            raise value
    raise EOFError("the worker's messages ended before its result")


# ---- local processes ----------------------------------------------------------------------------

def serve(conn, spec: WorkerSpec, index: int, visible: str | None) -> None:
    """A local worker process: run the tasks that arrive on `conn` until it closes."""
    if visible is not None:  # before anything touches CUDA
        os.environ["CUDA_VISIBLE_DEVICES"] = visible
    try:
        host = Host(spec, index)
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                return
            if msg is None:
                return
            fn, args = msg
            try:
                conn.send(("result", host.run(fn, args, lambda ev: conn.send(("event", ev)))))
            except BaseException as e:  # noqa: BLE001 - every failure goes back to the driver
                conn.send(("error", portable(e)))
                if not isinstance(e, Exception):  # interrupted: stop serving
                    return
    except (KeyboardInterrupt, BrokenPipeError):  # Ctrl-C reaches the workers too; the driver reports it
        return


def _visible(index: int) -> str:
    """CUDA_VISIBLE_DEVICES for the GPU worker `index`: the index-th of this process's GPUs."""
    mine = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return mine[index] if index < len(mine) else str(index)


class _ProcessWorker:
    def __init__(self, spec: WorkerSpec, index: int):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # no fork of a process that may hold CUDA or threads
        self.conn, child = ctx.Pipe()
        visible = None if not spec.gpu else _visible(index)
        self.proc = ctx.Process(target=serve, args=(child, spec, index, visible), daemon=True,
                                name=f"musivid-worker-{index}")
        self.proc.start()
        child.close()
        self.index = index

    @property
    def pid(self) -> int:
        return self.proc.pid

    def call(self, fn: Callable, args: tuple, on_event: Callable[[Any], None]) -> Any:
        def messages():
            while True:
                yield self.conn.recv()

        try:
            self.conn.send((fn, args))
            return settle(messages(), on_event)
        except (EOFError, OSError):
            self.proc.join(5)
            raise WorkerDied(f"worker {self.index + 1} (pid {self.proc.pid}) died (exit code {self.proc.exitcode})"
                             ) from None

    def stop(self, interrupt: bool) -> None:
        import signal

        if self.proc.is_alive():
            if interrupt:  # let a running task save its checkpoint
                os.kill(self.proc.pid, signal.SIGINT)
            else:
                try:
                    self.conn.send(None)
                except OSError:
                    pass
            self.proc.join(30)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.conn.close()


# ---- Ray actors ------------------------------------------------------------------------------------

class RayHost:
    """The Ray actor (made remote by ray_pool): a Host whose `run` streams events, then the result."""

    def __init__(self, spec: WorkerSpec, index: int):
        self.host = Host(spec, index)

    def pid(self) -> int:
        return os.getpid()

    def run(self, fn: Callable, args: tuple):
        q: queue.Queue = queue.Queue()

        def target():
            try:
                q.put(("result", self.host.run(fn, args, lambda ev: q.put(("event", ev)))))
            except BaseException as e:  # noqa: BLE001 - every failure goes back to the driver
                q.put(("error", portable(e)))

        threading.Thread(target=target, daemon=True).start()
        while True:
            kind, value = q.get()
            yield kind, value
            if kind != "event":
                return


class _RayWorker:
    def __init__(self, spec: WorkerSpec, index: int):
        import ray

        cls = ray.remote(RayHost)
        # one CPU slot per actor, whatever its thread count: CPU workers of an exact (sharded) run
        # each use as many threads as a one-device run, so they share the cores
        opts = {"num_gpus": 1, "num_cpus": 1} if spec.gpu else {"num_cpus": 1}
        if spec.threads:  # not Ray's OMP_NUM_THREADS=1: every thread of the actor starts with the spec's count
            opts["runtime_env"] = {"env_vars": {"OMP_NUM_THREADS": str(spec.threads)}}
        self.actor = cls.options(max_restarts=0, max_concurrency=2, **opts).remote(spec, index)
        self.index = index
        self._pid: int | None = None

    @property
    def pid(self) -> int:
        import ray

        if self._pid is None:
            self._pid = ray.get(self.actor.pid.remote())
        return self._pid

    def call(self, fn: Callable, args: tuple, on_event: Callable[[Any], None]) -> Any:
        import ray
        from ray.exceptions import RayActorError

        try:
            refs = self.actor.run.options(num_returns="streaming").remote(fn, args)
            return settle((ray.get(ref) for ref in refs), on_event)
        except (RayActorError, EOFError) as e:
            raise WorkerDied(f"worker {self.index + 1} (Ray actor) died: {str(e).splitlines()[0][:200]}") from None

    def stop(self, interrupt: bool) -> None:
        import ray

        ray.kill(self.actor)


# A local Ray instance's workers do the run's work: at Ray's default niceness (15) they get ~3 % of
# a core that any other process wants, and a run on a busy machine all but stops.
LOCAL_RAY = {"worker_niceness": 0}


def connect_ray(address: str | None) -> bool:
    """Connect to the Ray cluster at `address` ("auto", "HOST:PORT", "ray://..."), or start a
    local instance when None and none is running. Returns whether this call started it."""
    try:
        import ray
    except ImportError:
        raise InputError("Ray is not installed: pip install 'musivid[ray]' (or run without --ray-address)") from None
    if ray.is_initialized():
        return False
    if address:
        log.info("connecting to the Ray cluster at %s", address)
        try:
            ray.init(address=address, log_to_driver=False)
        except ConnectionError as e:
            raise InputError(f"--ray-address {address}: no Ray cluster there ({e}): start one with "
                             "`ray start --head`, or leave --ray-address out for a local instance") from None
        return True
    log.info("starting a local Ray instance")
    ray.init(include_dashboard=False, log_to_driver=False, _system_config=LOCAL_RAY)
    return True


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def visible_gpus(backend: str) -> int:
    """GPUs the pool can use: the Ray cluster's (connected), else this machine's."""
    if backend == "ray":
        import ray

        return int(ray.cluster_resources().get("GPU", 0))
    import torch

    return torch.cuda.device_count()


# ---- the pool --------------------------------------------------------------------------------------

class Pool:
    """K workers holding the same models; a worker's tasks run one after another, in order."""

    def __init__(self, spec: WorkerSpec, workers: int, backend: str, *, on_event: Callable[[int, Any], None] | None = None,
                 owns_ray: bool = False):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}")
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self.spec, self.size, self.backend, self.owns_ray = spec, workers, backend, owns_ray
        self.on_event = on_event or (lambda i, ev: None)
        self._workers: list[Any] = [None] * workers
        self._threads = [ThreadPoolExecutor(1, thread_name_prefix=f"musivid-pool-{i}") for i in range(workers)]
        self._inline: Host | None = None
        self._lock = threading.Lock()
        if backend != "inline":
            for i in range(workers):  # start them all now: they start up in parallel
                self._worker(i)

    def _worker(self, i: int):
        with self._lock:
            if self._workers[i] is None:
                cls = _RayWorker if self.backend == "ray" else _ProcessWorker
                self._workers[i] = cls(self.spec, i)
                log.debug("worker %d/%d started (%s)", i + 1, self.size, self.backend)
            return self._workers[i]

    def pids(self) -> list[int]:
        """The workers' process ids (this process's for "inline")."""
        if self.backend == "inline":
            return [os.getpid()] * self.size
        return [self._worker(i).pid for i in range(self.size)]

    def submit(self, i: int, fn: Callable, *args) -> Future:
        """Run fn(host, emit, *args) on worker i (after its earlier tasks)."""
        if self.backend == "inline":  # in the caller's thread: Ctrl-C reaches the task itself
            fut: Future = Future()
            if self._inline is None:
                self._inline = Host(self.spec, 0, forward_logs=False)
            try:
                fut.set_result(self._inline.run(fn, args, lambda ev: self.on_event(i, ev)))
            except Exception as e:  # noqa: BLE001 - the caller reads it from the future
                fut.set_exception(e)
            return fut
        return self._threads[i].submit(self._call, i, fn, args)

    def _call(self, i: int, fn: Callable, args: tuple) -> Any:
        w = self._worker(i)
        try:
            return w.call(fn, args, lambda ev: self.on_event(i, ev))
        except WorkerDied:
            with self._lock:  # the next task on this slot gets a fresh worker
                self._workers[i] = None
            raise

    def close(self, interrupt: bool = False) -> None:
        """Stop every worker; with `interrupt`, ask running tasks to stop (local processes save
        their checkpoint on SIGINT) before they are killed."""
        for w in self._workers:
            if w is not None:
                try:
                    w.stop(interrupt)
                except Exception as e:  # noqa: BLE001 - closing must not hide the real error
                    log.debug("stopping a worker: %s", e)
        for t in self._threads:
            t.shutdown(wait=not interrupt, cancel_futures=True)
        self._workers = [None] * self.size
        if self.owns_ray:
            import ray

            ray.shutdown()
            self.owns_ray = False

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(interrupt=exc_type is not None and not issubclass(exc_type, Exception))


def open_pool(models: ModelConfig, device: str = "auto", *, gpus: str | int | None = None, workers: int | None = None,
              ray_address: str | None = None, use_ray: bool = True, exact: bool = True,
              inline_ok: bool = False) -> Pool:
    """The pool for `--gpus N|all` or `--workers N` on `device`.

    Backend: Ray (at `ray_address`, or a local instance) when installed and `use_ray`, else local
    processes; with `inline_ok`, one worker and no Ray run inline. GPU workers take one GPU each;
    `--gpus N` where no GPU is visible (or with device "cpu") gives N CPU workers. With `exact`
    (sharding), CPU workers use this process's torch thread count, as a one-device run would: the
    thread count changes the order of float sums. Otherwise the cores are divided between them.
    """
    import torch

    if ray_address and not use_ray:
        raise InputError("--ray-address and --no-ray exclude each other: pick one")
    if gpus is not None and workers is not None:
        raise InputError("--gpus and --workers exclude each other: --gpus N for N GPUs, --workers N for N "
                         "worker processes on --device")
    backend = "ray" if ray_address or (use_ray and ray_available()) else "process"
    if backend == "process" and use_ray and not inline_ok:
        log.info("Ray is not installed: using local worker processes (pip install 'musivid[ray]' for clusters)")
    owns = connect_ray(ray_address) if backend == "ray" else False
    try:
        avail = visible_gpus(backend) if device != "cpu" else 0
        if gpus == "all":
            if not avail:
                raise InputError("--gpus all: no GPU is visible here: use --workers N for CPU worker processes")
            n, gpu = avail, True
        elif gpus is not None:
            n, gpu = int(gpus), avail > 0
            if not gpu:
                log.warning("no GPU is %s: %d CPU worker processes instead", "used (--device cpu)" if device == "cpu"
                            else "visible", n)
            elif n > avail:
                raise InputError(f"--gpus {n}: only {avail} GPU(s) are visible: pass --gpus {avail} or --gpus all")
        else:
            n = workers if workers is not None else max(1, avail)
            gpu = avail > 0
            if gpu and n > avail:
                raise InputError(f"--workers {n}: only {avail} GPU(s) are visible, one per worker: pass at most {avail}")
        if n < 1:
            raise InputError(f"{'--gpus' if gpus is not None else '--workers'} {n}: give 1 or more")
        threads = 0 if gpu else (torch.get_num_threads() if exact else max(1, (os.cpu_count() or 1) // n))
        if backend == "process" and inline_ok and n == 1:
            backend = "inline"
        # a GPU worker sees only its own GPU, as cuda:0
        spec = WorkerSpec(models, "cuda" if gpu and backend != "inline" else device, gpu, threads)
        log.info("%d %s worker(s) (%s)", n, "GPU" if gpu else "CPU", {"ray": "Ray actors", "process": "local processes",
                                                                      "inline": "in this process"}[backend])
        return Pool(spec, n, backend, owns_ray=owns)
    except BaseException:
        if owns:
            import ray

            ray.shutdown()
        raise
