"""What the benchmarks share: sizes given on the command line, and a process's figures from /proc."""

import os


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
        try:
                with open(f"/proc/{pid}/status") as f:
                        for line in f:
                                if line.startswith(field + ":"):
                                        return int(line.split()[1])
        except OSError:
                pass
        return 0
