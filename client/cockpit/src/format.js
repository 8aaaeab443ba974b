/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Words and numbers for people. */

const _ = cockpit.gettext;

export function formatBytes(n) {
    if (n === undefined || n === null)
        return "";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = Number(n);
    let u = 0;
    while (v >= 1024 && u < units.length - 1) {
        v /= 1024;
        u++;
    }
    return (u === 0 ? String(v) : v.toFixed(v < 10 ? 1 : 0)) + " " + units[u];
}

/* µs since the epoch, as the service gives times. */
export function formatTime(usec) {
    if (!usec)
        return "";
    return new Date(Number(usec) / 1000).toLocaleString();
}

export function stageLabel(stage) {
    const labels = {
        queued: _("Queued"),
        "waiting-for-printer": _("Waiting for the printer"),
        starting: _("Starting"),
        preparing: _("Preparing"),
        scanning: _("Scanning files"),
        writing: _("Writing the archive"),
        syncing: _("Saving to disk"),
        uploading: _("Uploading"),
        fetching: _("Fetching"),
        validating: _("Checking the archive"),
        extracting: _("Extracting"),
        plugins: _("Reinstalling plugins"),
        downloading: _("Downloading plugins"),
        installing: _("Installing plugins"),
        swapping: _("Replacing the instance's files"),
    };
    return labels[stage] || stage;
}

export function operationLabel(op) {
    const labels = {
        backup: _("Backup"),
        restore: _("Restore"),
        upload: _("Upload to remotes"),
        fetch: _("Fetch from a remote"),
    };
    return labels[op] || op;
}
