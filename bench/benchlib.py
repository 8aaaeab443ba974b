"""What the benchmarks share: sizes given on the command line, a process's figures from /proc, and a
sampler of them in a thread. The benchmarks put tests/integration on sys.path before importing it."""

import os
import threading

from backuptest import status_field


def parse_size(text):
        """'500M', '2G', '64K' or a number of bytes."""
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        if text and text[-1].upper() in units:
                return int(float(text[:-1]) * units[text[-1].upper()])
        return int(text)


def proc_cpu(pid):
        """utime + stime + cutime + cstime of PID in seconds (the children it reaped included), or None."""
        try:
                with open(f"/proc/{pid}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
                return None
        return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def proc_io(pid):
        """/proc/PID/io as a dict ({} once PID is gone). A process's figures include those of the children
        it has reaped: the daemon's include every worker's."""
        out = {}
        try:
                with open(f"/proc/{pid}/io") as f:
                        for line in f:
                                k, v = line.split(":")
                                out[k] = int(v)
        except OSError:
                pass
        return out


def proc_status_kb(pid, field):
        """A kB figure of /proc/PID/status (VmRSS, VmHWM), 0 once PID is gone."""
        return status_field(pid, field) or 0


class Sampler:
        """Calls sample() every `interval` seconds in a thread for as long as a with block lasts (peaks read
        from /proc, say). Each with block starts a thread of its own."""

        interval = 0.01

        def sample(self):
                raise NotImplementedError

        def _run(self):
                while not self._stop.is_set():
                        self.sample()
                        self._stop.wait(self.interval)

        def __enter__(self):
                self._stop = threading.Event()
                self._thread = threading.Thread(target=self._run, daemon=True)
                self._thread.start()
                return self

        def __exit__(self, *exc):
                self._stop.set()
                self._thread.join()
