# Helpers shared by the test-restore-*.py integration tests: snapshots of an instance's tree (to prove a
# refused restore changed nothing, and to compare a restored tree with what it must be), the model of a
# restored basedir (the backup's files, plus the folders a restore keeps from before), starting restores
# through the daemon and waiting for their end, and writing backups the way OctoPrint does.

import hashlib
import json
import os
import stat
import time
import zipfile

import fixture
from fixture import IFACE_INSTANCE, DBusError, expect
import backuptest as bt

ERROR_RESTORE_UNSUPPORTED = "org.opbackup.backup1.Error.RestoreUnsupported"
ERROR_BUSY = "org.opbackup.backup1.Error.Busy"
ERROR_INCOMPATIBLE = "org.opbackup.backup1.Error.IncompatibleVersion"
ERROR_NOT_ENOUGH_SPACE = "org.opbackup.backup1.Error.NotEnoughSpace"

# What a restore keeps from the tree it replaces (opbackupd(8), RESTORE, step 6), besides the backup folder
# and the folders the backup excluded: the default locations of the folders backups always leave out.
ALWAYS_KEPT = ["logs", "watched", "generated", "uploadtemp"]


# ---------------------------------------------------------------------------------------------------------
# Paths next to basedir (restore-swap.h)

def staging_path(basedir):
        parent, base = os.path.split(basedir)
        return os.path.join(parent, f".{base}.opbackup-staging")


def journal_path(basedir):
        parent, base = os.path.split(basedir)
        return os.path.join(parent, f".{base}.opbackup-journal")


def old_path(basedir):
        return basedir + ".opbackup-old"


def expect_no_leftovers(basedir, what="", allow_old=False):
        """No staging folder, no journal (nor its temp file), no basedir.opbackup-old next to basedir."""
        parent = os.path.dirname(basedir)
        left = [n for n in os.listdir(parent) if "opbackup-staging" in n or "opbackup-journal" in n
                or (not allow_old and n.endswith(".opbackup-old"))]
        expect(not left, f"{what}: left next to basedir: {left}")


# ---------------------------------------------------------------------------------------------------------
# Snapshots

def sha256_bytes(data):
        return hashlib.sha256(data).hexdigest()


def snapshot(root, skip=(), strict=False):
        """{relative path: attributes} of everything under root (root itself is ""), without following
        symlinks. Files: (type, mode, uid, gid, size, sha256, mtime in seconds); folders: (type, mode, uid,
        gid). strict adds the inode and the mtime in ns to everything (folders too): what "untouched" means.
        skip: relative paths left out with everything below them."""
        skip = tuple(skip)
        out = {}

        def skipped(rel):
                return any(rel == s or rel.startswith(s + "/") for s in skip)

        def visit(path, rel):
                st = os.lstat(path)
                extra = (st.st_ino, st.st_mtime_ns) if strict else ()
                if stat.S_ISDIR(st.st_mode):
                        out[rel] = ("d", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) + extra
                        for name in sorted(os.listdir(path)):
                                r = f"{rel}/{name}" if rel else name
                                if not skipped(r):
                                        visit(os.path.join(path, name), r)
                elif stat.S_ISREG(st.st_mode):
                        out[rel] = ("f", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size,
                                    bt.sha256_file(path), int(st.st_mtime)) + extra
                elif stat.S_ISLNK(st.st_mode):
                        out[rel] = ("l", os.readlink(path), st.st_uid) + extra
                else:
                        out[rel] = ("other", st.st_mode, st.st_uid) + extra

        visit(root, "")
        return out


def instance_state(basedir, skip=()):
        """A strict snapshot of basedir's parent (basedir, and next to it the venv, the journal, staging...),
        except the parent folder's own mtime: a restore makes and removes its staging folder there even when
        it then refuses, which is not a change to the instance. skip: paths relative to the parent."""
        snap = snapshot(os.path.dirname(basedir), skip=skip, strict=True)
        snap[""] = snap[""][:5]
        return snap


def diff(actual, wanted, limit=25):
        """Human-readable differences between two snapshots (empty when equal)."""
        out = []
        for rel in sorted(set(actual) | set(wanted)):
                a, w = actual.get(rel), wanted.get(rel)
                if a == w:
                        continue
                if a is None:
                        out.append(f"  missing: {rel!r} (want {w})")
                elif w is None:
                        out.append(f"  unexpected: {rel!r} {a}")
                else:
                        out.append(f"  differs: {rel!r}: got {a}, want {w}")
                if len(out) >= limit:
                        out.append("  ...")
                        break
        return "\n".join(out)


def expect_same(actual, wanted, what):
        d = diff(actual, wanted)
        expect(not d, f"{what}:\n{d}")


# ---------------------------------------------------------------------------------------------------------
# The restored tree, as it must be

def zip_time(date_time):
        """A zip entry's DOS time as the local-time epoch seconds extraction gives the file."""
        return int(time.mktime(tuple(date_time) + (0, 0, -1)))


def carried_paths(backup_folder_rel, excludes):
        """The relative paths a restore keeps (opbackupd(8), RESTORE, step 6) for a backup with EXCLUDES."""
        ids = list(excludes) + (["timelapse_tmp"] if "timelapse" in excludes else [])
        out = [backup_folder_rel] if backup_folder_rel else []
        for fid in ids + ALWAYS_KEPT:
                rel = fid.replace("_", "/")
                if rel not in out:
                        out.append(rel)
        return out


def restored_model(zip_path, before, carry, uid, gid):
        """What basedir must hold after restoring ZIP_PATH over the tree BEFORE (a strict snapshot): every
        basedir/ file of the zip (last duplicate wins) with its content, mode without setuid/setgid/sticky,
        mtime, owned by uid:gid; the folders leading to them; and, taken unchanged from BEFORE (strict:
        same inodes, same times), everything under the CARRY paths. Compare with loose_carried()."""
        model = {"": ("d", uid, gid)}

        def add_parents(rel):
                parts = rel.split("/")
                for k in range(1, len(parts)):
                        model.setdefault("/".join(parts[:k]), ("d", uid, gid))

        with zipfile.ZipFile(zip_path) as z:
                infos = {}
                for i in z.infolist():
                        infos[i.filename] = i          # the last one of a name wins
                for name, i in infos.items():
                        if not name.startswith("basedir/") or name == "basedir/":
                                continue
                        rel = name[len("basedir/"):]
                        if any(rel == c or rel.startswith(c + "/") for c in carry):
                                continue        # what was on disk wins over what the backup has there
                        if rel.endswith("/"):
                                rel = rel.rstrip("/")
                                add_parents(rel)
                                model[rel] = ("d", uid, gid)
                                continue
                        data = z.read(i)
                        mode = (i.external_attr >> 16) & 0o777 or 0o644
                        add_parents(rel)
                        model[rel] = ("f", mode, uid, gid, len(data), sha256_bytes(data), zip_time(i.date_time))
        for rel, a in before.items():
                if any(rel == c or rel.startswith(c + "/") for c in carry):
                        add_parents(rel)
                        model[rel] = a
        return model


def comparable(actual_strict, model):
        """actual_strict reduced to what MODEL says about each path: the full strict tuple where the model
        has one (carried paths), the loose form elsewhere."""
        out = {}
        for rel, a in actual_strict.items():
                w = model.get(rel)
                if w is not None and len(w) == len(a):
                        out[rel] = a
                elif a[0] == "f":
                        out[rel] = a[:7]
                elif a[0] == "d":
                        out[rel] = ("d",) + a[2:4]
                else:
                        out[rel] = a[:3]
        return out


def expect_restored(basedir, model, what):
        actual = snapshot(basedir, strict=True)
        expect_same(comparable(actual, model), model, f"{what}: the restored basedir differs from the backup "
                    "(plus the folders kept from before)")


# ---------------------------------------------------------------------------------------------------------
# Restores through the daemon

class Outcome:
        """How a restore ended: refused by the call (error_name set), or a job that ended (result set)."""

        def __init__(self, error_name=None, message="", result=None, details=None, log=None, job=None):
                self.error_name = error_name
                self.message = message
                self.result = result
                self.details = details or {}
                self.log = log or []
                self.job = job

        def refused(self):
                return self.error_name is not None or self.result == "failed"

        def log_text(self):
                return "\n".join(f"{level}: {line}" for level, line in self.log)

        def __repr__(self):
                if self.error_name:
                        return f"<refused by the call: {self.error_name}: {self.message}>"
                return f"<job {self.job} {self.result}: {self.message}>"


def restore(fx, listener, name=None, file=None, options=None, user="root", instance="inst1", timeout=300,
            pass_fds=()):
        """RestoreBackup(name) or RestoreBackupFromFile(file: a path busclient opens as USER, or an inherited
        fd listed in pass_fds), waited for with LISTENER (subscribed); returns an Outcome."""
        options = options or {}
        try:
                if file is None:
                        jid, jpath = fx.call(user, fx.instance_path(instance), IFACE_INSTANCE, "RestoreBackup",
                                             "sa{sv}", name, options)
                else:
                        jid, jpath = fx.call(user, fx.instance_path(instance), IFACE_INSTANCE,
                                             "RestoreBackupFromFile", "ha{sv}", file, options, pass_fds=pass_fds)
        except DBusError as e:
                return Outcome(error_name=e.name, message=e.message)
        removed = bt.job_removed(listener, jid, timeout)
        _, _, result, error, details = removed["args"]
        return Outcome(result=result, message=error, details=details, log=bt.job_log(listener, jpath), job=jid)


def restore_ok(fx, listener, **kw):
        o = restore(fx, listener, **kw)
        expect(o.result == "done", f"the restore did not succeed: {o}\nits log:\n{o.log_text()}")
        return o


def backup_folder_files(folder):
        """{name: sha256} of every file in the backup folder, hidden ones included."""
        return {n: bt.sha256_file(os.path.join(folder, n)) for n in sorted(os.listdir(folder))
                if os.path.isfile(os.path.join(folder, n))}


# ---------------------------------------------------------------------------------------------------------
# Backups written like OctoPrint writes them

def octoprint_zip(path, exp, excludes=(), plugin_list=None, extra_entries=()):
        """A backup of the sample instance EXP (fx.expected()) written the way OctoPrint's backup plugin does
        (octoprint/plugins/backup: CPython zipfile, ZIP_DEFLATED, allowZip64; metadata.json first via
        writestr; config.yaml; each folder id from its configured location; the rest of basedir; then
        plugin_list.json). As in OctoPrint, timelapse/tmp is written twice when timelapse_tmp lies inside the
        timelapse folder. extra_entries: (name or ZipInfo, bytes) written after the tree, before
        plugin_list.json (duplicate names allowed, as zipfile allows them)."""
        import warnings
        basedir = exp["basedir"]
        folders = exp["folders"]
        backup_folder = exp["backup_folder"]
        ids = [f for f in bt.FOLDER_IDS if f not in excludes and f not in ALWAYS_KEPT
               and not (f == "timelapse_tmp" and "timelapse" in excludes)]
        with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)     # duplicate names
                with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as z:
                        def add_to_zip(source, target, ignored):
                                if source in ignored:
                                        return
                                if os.path.isdir(source):
                                        for entry in os.scandir(source):
                                                add_to_zip(entry.path, os.path.join(target, entry.name), ignored)
                                elif os.path.isfile(source):
                                        z.write(source, arcname=target)

                        z.writestr("metadata.json", json.dumps({"version": exp["octoprint_version"],
                                                                "excludes": list(excludes)}))
                        add_to_zip(exp["config"], "basedir/config.yaml", [backup_folder])
                        for fid in ids:
                                add_to_zip(folders[fid], "basedir/" + fid.replace("_", "/"), [backup_folder])
                        defaults = [os.path.join(basedir, f.replace("_", "/")) for f in bt.FOLDER_IDS]
                        add_to_zip(basedir, "basedir", [exp["config"], backup_folder] + defaults)
                        for name, data in extra_entries:
                                z.writestr(name, data)
                        if plugin_list:
                                z.writestr("plugin_list.json", json.dumps(plugin_list))
        os.chmod(path, 0o644)
        return path


def rewrite_zip(src, dst, replace=None, drop=(), add=()):
        """A copy of the zip SRC with entries replaced ({name: bytes}), dropped, or added ((name, bytes)),
        keeping every other entry's attributes."""
        replace = replace or {}
        with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zo:
                for i in zi.infolist():
                        if i.filename in drop:
                                continue
                        zo.writestr(i, replace.get(i.filename, zi.read(i)))
                for name, data in add:
                        zo.writestr(name, data)
        return dst


def chown_tree(path, user=fixture.USER_PRINTER):
        for dirpath, dirnames, filenames in os.walk(path):
                bt.chown_user(dirpath, user)
                for f in filenames:
                        bt.chown_user(os.path.join(dirpath, f), user)


def readable_copy(fx, src, name):
        """A copy of src in the fixture dir that any test user can read (a FILE a client passes)."""
        d = os.path.join(fx.dir, "files")
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        dst = os.path.join(d, name)
        with open(src, "rb") as f, open(dst, "wb") as g:
                g.write(f.read())
        os.chmod(dst, 0o644)
        return dst
