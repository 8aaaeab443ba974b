# The quick-start demo: a private system bus, the real polkitd, opbackupd and a sample OctoPrint instance;
# then what a user would type. Run through demo.sh (as root, in a private mount namespace).

import os
import shlex
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "integration"))
import fixture  # noqa: E402


def run(fx, user, *args):
        prompt = "#" if user == "root" else "$"
        print(f"\n{user}{prompt} opbackupctl {' '.join(shlex.quote(a) for a in args)}", flush=True)
        r = fx.ctl(user, *args)
        # The job log comes on stderr while the job runs, the result on stdout at the end.
        sys.stdout.write(r.stderr)
        sys.stdout.write(r.stdout)
        if r.returncode != 0:
                print(f"(exit code {r.returncode})")
        return r


def main():
        if os.geteuid() != 0:
                print("The demo needs root (a private bus, polkitd, test users).")
                sys.exit(1)
        with fixture.Fixture(instances={"printer1": {"size": "small", "gen_args": ["--restart-command", "true"]}}) as fx:
                user = fixture.USER_ALLOWED
                print(f"Sample OctoPrint instance: {fx.basedir('printer1')} (owned by {fixture.USER_PRINTER})")
                print(f"Private system bus: {fx.address}; polkitd and opbackupd are running on it.")
                print(f"Commands run as {user}, a member of group 'opbackup' (the shipped polkit rules "
                      "allow it to list, create and delete backups).")
                run(fx, user, "status")
                r = run(fx, user, "backup", "--exclude", "timelapse")
                if r.returncode != 0:
                        sys.exit(1)
                run(fx, user, "list")
                name = fx.ctl(user, "--json", "list").stdout
                import json
                backups = json.loads(name)
                if not backups:
                        sys.exit(1)
                name = backups[0]["name"]
                run(fx, user, "inspect", name)
                run(fx, fixture.USER_DENIED, "list")

                config = os.path.join(fx.basedir("printer1"), "config.yaml")
                with open(config, "a") as f:
                        f.write("# an edit made after the backup\n")
                print(f"\n(The demo appends a line to {config}; the restore will take it back.)")
                run(fx, user, "restore", "--yes", name)
                r = run(fx, "root", "restore", "--yes", name)
                if r.returncode != 0:
                        sys.exit(1)
                with open(config) as f:
                        edited = "an edit made after the backup" in f.read()
                print(f"\nconfig.yaml after the restore: {'still edited (unexpected!)' if edited else 'as it was in the backup'}")
                run(fx, user, "list")
                print("\nThe demo is done; everything it started is stopped again.")


if __name__ == "__main__":
        main()
