"""Snakemake's console for chaosgrid runs (`--logger chaosgrid`, set by profiles/default): what Snakemake
prints under the profile's quiet settings, plus what a grid's user needs and that setting hides.

- A failed job's rule, wildcards and the end of its log, always, in a few lines (`failed_job`). Snakemake files
  job errors under the `rules` quietness, which the profile sets to keep one block per job (hundreds of
  shards) off the console; that hid every failure's cause (`returned non-zero exit status 1`, the reason only
  in the log file). Its own block repeats the shell command (a shard's whole spec) twice: that stays in
  .snakemake/log/.
- A line per finished shard: its study and grid point, its runs, its seconds; then shard jobs and runs
  done of those planned, with an estimate of the time left. (Inside a running shard: `chaosgrid status`.)

Chosen over snakemake-logger-plugin-rich (0.5.1): that one replaces the console with a live terminal
display (lost in SLURM and CI log files), pulls in pydantic and rich, prints whole log files on failure,
and knows nothing of shards and runs. This one keeps Snakemake's own formatting for everything else.
Snakemake finds it by its module name (`snakemake_logger_plugin_<name>`), installed with chaosgrid.
"""

from __future__ import annotations

import sys
from logging import LogRecord

from snakemake_interface_logger_plugins.base import LogHandlerBase

TAIL = 20  # lines of a failed job's log shown on the console (the whole log stays in its file)


class LogHandler(LogHandlerBase):
    def __post_init__(self) -> None:
        from snakemake.logging import DefaultFilter, DefaultFormatter

        s = self.common_settings
        self.default = DefaultFilter(s.quiet, s.debug_dag, s.verbose, s.dryrun, s.printshellcmds)
        self.setFormatter(DefaultFormatter(s.quiet, False))  # the log tail is ours: TAIL lines, not all
        self.stream = sys.stdout if s.stdout else sys.stderr
        self.shards: dict[int, tuple[str, int, float]] = {}  # running shard jobs: label, runs, start
        self.planned_jobs = 0
        self.done_jobs = self.done_runs = 0
        self.first_start: float | None = None
        self.failures: dict[
            str, str
        ] = {}  # each failed job's last line by its logs: a retry failing alike gets one line

    @property
    def writes_to_stream(self) -> bool:
        return True

    @property
    def writes_to_file(self) -> bool:
        return False

    @property
    def has_filter(self) -> bool:
        return True

    @property
    def has_formatter(self) -> bool:
        return True

    @property
    def needs_rulegraph(self) -> bool:
        return False

    def emit(self, record: LogRecord) -> None:
        from snakemake_interface_logger_plugins.common import LogEvent

        event = getattr(record, "event", None)
        if event == LogEvent.JOB_ERROR:
            text, logs = failed_job(record), ", ".join(map(str, getattr(record, "log", None) or []))
            # the error, not the timings above
            same = logs and self.failures.get(logs) == text.splitlines()[-1]
            self.write(f"{text.partition(':')[0]} ({logs}): its retry failed the same way" if same else text)
            self.failures[logs] = text.splitlines()[-1]
        elif event == LogEvent.GROUP_ERROR or (
            self.default.filter(record) and not job_command_failed(record)
        ):
            self.write(self.format(record))
        if event == LogEvent.RUN_INFO:
            self.planned_jobs = sum(
                n for job, n in getattr(record, "stats", {}).items() if job.startswith("train_shard")
            )
        elif event == LogEvent.JOB_INFO and record.rule_name.startswith("train_shard"):
            wildcards = getattr(record, "wildcards", {}) or {}
            label = f"{wildcards.get('study', '?')} {wildcards.get('shard', '?')}"
            self.shards[record.jobid] = (label, shard_runs(wildcards.get("shard", "")), record.created)
            self.first_start = self.first_start or record.created
        elif event == LogEvent.JOB_FINISHED and getattr(record, "job_id", None) in self.shards:
            label, runs, started = self.shards.pop(record.job_id)
            self.done_jobs += 1
            self.done_runs += runs
            self.write(
                f"shard done: {label}: {runs} runs in {record.created - started:.0f} s; "
                f"{self.progress(record.created)}"
            )

    def progress(self, now: float) -> str:
        """Shard jobs and runs done of those planned, with the time left at the rate so far."""
        self.planned_jobs = max(self.planned_jobs, self.done_jobs)  # checkpoints may add jobs after the count
        text = f"{self.done_jobs} of {self.planned_jobs} shard jobs ({self.done_runs} runs) done"
        left = self.planned_jobs - self.done_jobs
        if left and self.first_start is not None:
            seconds = (now - self.first_start) / self.done_jobs * left
            text += (
                f", about {seconds / 60:.0f} min left" if seconds >= 60 else f", about {seconds:.0f} s left"
            )
        return text

    def write(self, text: str) -> None:
        if text:
            self.stream.write(text.rstrip("\n") + "\n")
            self.stream.flush()


def shard_runs(key: str) -> int:
    """The runs of a shard, from its key: its grid points ("weight_decay~0+0.001/") times its seeds
    ("seeds~0-7" or "seeds~0,2-3")."""
    from chaosgrid.plan.studies import key_runs

    return key_runs(key)


def failed_job(record: LogRecord) -> str:
    """A failed job in a few lines: its rule and wildcards, then the end of its log, where chaosgrid's commands
    say what went wrong in one line. Snakemake's full block (input, output, the shell command with its spec)
    stays in .snakemake/log/."""
    wildcards = ", ".join(f"{k}={v}" for k, v in (getattr(record, "wildcards", None) or {}).items())
    head = (
        f"Error in rule {getattr(record, 'rule_name', '?')}" + (f" ({wildcards})" if wildcards else "") + ":"
    )
    return "\n".join(filter(None, [head, log_tails(getattr(record, "log", None) or [])]))


def job_command_failed(record: LogRecord) -> bool:
    """Snakemake's report that a job's command exited non-zero (the command line again): the job's own error
    block, with its log, says more."""
    text = str(record.getMessage())
    return text.startswith("RuleException:") and "CalledProcessError" in text


def log_tails(logs: list) -> str:
    """The last TAIL lines of each log of a failed job, framed, or "" when it wrote none."""
    from pathlib import Path

    blocks = []
    for log in logs:
        path = Path(str(log))
        if path.is_file():
            lines = path.read_text(errors="replace").rstrip("\n").splitlines()[-TAIL:]
            blocks.append(f"    last lines of {path}:\n" + "\n".join(f"    | {line}" for line in lines))
    return "\n".join(blocks)
