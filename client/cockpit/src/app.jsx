/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The page: the service's instances, their backups and jobs, kept up to date from the service's signals
 * while the page is open (Manager.Subscribe). */

import React, { useCallback, useEffect, useRef, useState } from "react";
import {
    Bullseye, EmptyState, EmptyStateBody, EmptyStateHeader, EmptyStateIcon, Page, PageSection,
    PageSectionVariants, Spinner, Stack, StackItem, Text, TextContent, Title,
} from "@patternfly/react-core";
import { ExclamationCircleIcon, LockIcon, CubesIcon } from "@patternfly/react-icons";

import {
    bus, call, properties, unwrapAll, isRefusal, mayDo, MANAGER_PATH, JOB_PATH_PREFIX, IFACE_MANAGER,
    IFACE_INSTANCE, IFACE_JOB, ERROR_SERVICE_UNKNOWN,
} from "./bus.js";
import { formatBytes, operationLabel } from "./format.js";
import { InstanceCard } from "./instance.jsx";
import { RemotesCard } from "./remotes.jsx";

const _ = cockpit.gettext;
const LOG_LINES_KEPT = 500;

function jobOutcome(job, result, error, details) {
    const what = operationLabel(job.Operation);
    const unknown = (details["unknown-plugins"] && details["unknown-plugins"].v) || [];
    if (result === "done") {
        let title;
        if (job.Operation === "backup")
            title = cockpit.format(_("Backup $0 created ($1)"), details.name ? details.name.v : job.Name,
                                   formatBytes(details.size ? details.size.v : 0));
        else if (job.Operation === "restore")
            title = cockpit.format(_("Restored $0"), job.Name);
        else
            title = cockpit.format(_("$0 of $1 finished"), what, job.Name);
        if (details.uploads && job.Operation === "upload")
            title = cockpit.format(_("$0 copied to $1"), job.Name, details.uploads.v.map(([remote]) => remote).join(", "));
        if (details.skipped && details.skipped.v)
            return { variant: "info", title: cockpit.format(_("Backup skipped: $0"), error), log: job.log };
        return { variant: unknown.length ? "warning" : "success", title, unknown, log: job.log };
    }
    const uploads = (details.uploads && details.uploads.v) || [];
    const failedUploads = uploads.filter(([, state]) => state !== "done")
        .map(([remote, , why]) => cockpit.format(_("$0: $1"), remote, why)).join("; ");
    if (result === "canceled")
        return { variant: "info", title: cockpit.format(_("$0 of $1 canceled"), what, job.Name), body: error, log: job.log };
    return { variant: "danger", title: cockpit.format(_("$0 of $1 failed"), what, job.Name), body: failedUploads || error, log: job.log };
}

export function App() {
    /* phase: loading | unavailable | denied | ready */
    const [phase, setPhase] = useState("loading");
    const [problem, setProblem] = useState(null);
    const [user, setUser] = useState(null);
    const [instances, setInstances] = useState({});   // name -> instance state (see loadInstance)
    const [order, setOrder] = useState([]);           // instance names, as the service lists them
    const [jobs, setJobs] = useState({});             // job path -> properties, plus log
    const [loadedAt, setLoadedAt] = useState(null);
    const [remotes, setRemotes] = useState(null);     // [{ name, type, url }], or { error }
    const removedJobs = useRef(new Set());
    const jobsRef = useRef({});
    jobsRef.current = jobs;

    const patchInstance = useCallback((name, patch) => {
        setInstances(all => {
            if (!all[name])
                return all;
            const next = typeof patch === "function" ? patch(all[name]) : patch;
            return { ...all, [name]: { ...all[name], ...next } };
        });
    }, []);

    const loadBackups = useCallback(async (name, path) => {
        try {
            const [list] = await call(path, IFACE_INSTANCE, "ListBackups", []);
            const backups = list.map(([bname, size, usize, mtime, version, excludes]) =>
                ({ name: bname, size, usize, mtime, version, excludes }));
            patchInstance(name, { backups, backupsError: null });
        } catch (e) {
            patchInstance(name, { backupsError: e.message, backups: [] });
        }
    }, [patchInstance]);

    const loadProps = useCallback(async (name, path) => {
        try {
            patchInstance(name, { props: await properties(path, IFACE_INSTANCE) });
        } catch (e) {
            patchInstance(name, { propsError: e.message });
        }
    }, [patchInstance]);

    const loadUnknownPlugins = useCallback(async (name, path) => {
        try {
            const [plugins] = await call(path, IFACE_INSTANCE, "GetUnknownPlugins", []);
            patchInstance(name, { unknownPlugins: plugins.map(([key, pname, homepage]) => ({ key, name: pname, homepage })) });
        } catch (e) {
            patchInstance(name, { unknownPlugins: [] });
        }
    }, [patchInstance]);

    const addAlert = useCallback((name, alert) => {
        patchInstance(name, inst => ({ alerts: [{ key: Date.now() + Math.random(), ...alert }, ...inst.alerts].slice(0, 5) }));
    }, [patchInstance]);

    const addJob = useCallback(async path => {
        if (jobsRef.current[path] || removedJobs.current.has(path))
            return;
        try {
            const props = await properties(path, IFACE_JOB);
            if (removedJobs.current.has(path))
                return;
            setJobs(all => all[path] ? all : { ...all, [path]: { ...props, path, log: [] } });
        } catch (e) {
            /* Ended before we asked: JobRemoved says how. */
        }
    }, []);

    /* Everything, from the start: used at load and when the service (re)appears on the bus. */
    const loadAll = useCallback(async () => {
        const start = performance.now();
        let list;
        try {
            [list] = await call(MANAGER_PATH, IFACE_MANAGER, "ListInstances", []);
        } catch (e) {
            setProblem(e);
            setPhase(isRefusal(e) ? "denied" : "unavailable");
            return;
        }
        const fresh = {};
        for (const [name, path] of list) {
            fresh[name] = {
                name, path, props: null, backups: null, backupsError: null, unknownPlugins: [], alerts: [],
                may: { create: null, delete: null, restore: null },
            };
        }
        setInstances(fresh);
        setOrder(list.map(([name]) => name));
        setPhase("ready");
        /* Signals first, then what they update: nothing that happens in between is missed. */
        try {
            await call(MANAGER_PATH, IFACE_MANAGER, "Subscribe", []);
        } catch (e) {
            console.warn("Subscribe failed:", e.message);
        }
        call(MANAGER_PATH, IFACE_MANAGER, "ListRemotes", [])
            .then(([rlist]) => setRemotes(rlist.map(([rname, type, url]) => ({ name: rname, type, url }))))
            .catch(e => setRemotes({ error: e.message }));
        await Promise.all(list.map(async ([name, path]) => {
            await Promise.all([loadProps(name, path), loadBackups(name, path)]);
            setLoadedAt(performance.now() - start);
            loadUnknownPlugins(name, path);
            const [create, del, restore] = await Promise.all(
                ["create", "delete", "restore"].map(action => mayDo(action)));
            patchInstance(name, { may: { create, delete: del, restore } });
        }));
        try {
            const [jobList] = await call(MANAGER_PATH, IFACE_MANAGER, "ListJobs", []);
            for (const [, , , , path] of jobList)
                addJob(path);
        } catch (e) {
            console.warn("ListJobs failed:", e.message);
        }
    }, [addJob, loadBackups, loadProps, loadUnknownPlugins, patchInstance]);

    const instancesRef = useRef({});
    instancesRef.current = instances;

    useEffect(() => {
        cockpit.user().then(setUser);
        const client = bus();
        const subs = [];
        subs.push(client.subscribe({ path: MANAGER_PATH, interface: IFACE_MANAGER }, (path, iface, signal, args) => {
            const inst = instancesRef.current[args[0]];
            if (signal === "BackupCreated" && inst) {
                loadBackups(inst.name, inst.path);
                loadProps(inst.name, inst.path);
            } else if (signal === "BackupDeleted" && inst) {
                patchInstance(inst.name, i => ({ backups: (i.backups || []).filter(b => b.name !== args[1]) }));
                loadProps(inst.name, inst.path);
            } else if (signal === "BackupUploaded" && inst) {
                loadProps(inst.name, inst.path);
            } else if (signal === "JobNew") {
                addJob(args[1]);
            } else if (signal === "JobRemoved") {
                const [, jobPath, result, error, details] = args;
                removedJobs.current.add(jobPath);
                const job = jobsRef.current[jobPath];
                setJobs(all => {
                    const next = { ...all };
                    delete next[jobPath];
                    return next;
                });
                if (job && instancesRef.current[job.Instance]) {
                    const target = instancesRef.current[job.Instance];
                    addAlert(job.Instance, jobOutcome(job, result, error, details));
                    /* Free space, the remotes' last uploads, a restored instance's version. */
                    loadProps(target.name, target.path);
                    if (job.Operation === "restore")
                        loadUnknownPlugins(target.name, target.path);
                }
            }
        }));
        subs.push(client.subscribe({ path_namespace: JOB_PATH_PREFIX, interface: "org.freedesktop.DBus.Properties", member: "PropertiesChanged" },
                                   (path, iface, signal, [jobIface, changed]) => {
                                       if (jobIface !== IFACE_JOB)
                                           return;
                                       setJobs(all => all[path] ? { ...all, [path]: { ...all[path], ...unwrapAll(changed) } } : all);
                                   }));
        subs.push(client.subscribe({ path_namespace: JOB_PATH_PREFIX, interface: IFACE_JOB, member: "Log" },
                                   (path, iface, signal, [level, line]) => {
                                       setJobs(all => all[path]
                                           ? { ...all, [path]: { ...all[path], log: [...all[path].log, { level, line }].slice(-LOG_LINES_KEPT) } }
                                           : all);
                                   }));
        /* The service exits when idle and is started again on demand: a new owner means a new
         * subscription is needed, and what happened meanwhile is read again. */
        let seen = null;
        const onOwner = (event, newOwner) => {
            if (!newOwner)
                return;
            if (seen && newOwner !== seen)
                loadAll();
            seen = newOwner;
        };
        client.addEventListener("owner", onOwner);
        loadAll();
        return () => {
            subs.forEach(s => s.remove());
            client.removeEventListener("owner", onOwner);
        };
    }, []); // eslint-disable-line react-hooks/exhaustive-deps

    /* A job started from this page: its path comes back at once; JobNew may come before or after. */
    const jobStarted = useCallback(path => addJob(path), [addJob]);

    let body;
    if (phase === "loading") {
        body = (
            <Bullseye>
                <EmptyState>
                    <EmptyStateHeader titleText={_("Loading")} icon={<EmptyStateIcon icon={Spinner} />} headingLevel="h2" />
                </EmptyState>
            </Bullseye>
        );
    } else if (phase === "denied") {
        body = (
            <EmptyState id="opbackup-denied">
                <EmptyStateHeader titleText={_("You are not allowed to see OctoPrint backups")}
                                  icon={<EmptyStateIcon icon={LockIcon} />} headingLevel="h2" />
                <EmptyStateBody>
                    <p>{cockpit.format(_("The backup service refused access to $0."), user ? user.name : _("this user"))}</p>
                    <p>{_("Members of the group “opbackup” may see, create and delete backups; restoring needs an administrator. Ask an administrator to add you (usermod -aG opbackup USER), or turn on administrative access.")}</p>
                    <p className="opbackup-detail">{problem ? problem.message : ""}</p>
                </EmptyStateBody>
            </EmptyState>
        );
    } else if (phase === "unavailable") {
        /* Not on the bus and not activatable: the bus says ServiceUnknown, Cockpit's bridge "not-found". */
        const unknown = problem && (problem.name === ERROR_SERVICE_UNKNOWN || problem.problem === "not-found");
        body = (
            <EmptyState id="opbackup-unavailable">
                <EmptyStateHeader titleText={_("The backup service is not available")}
                                  icon={<EmptyStateIcon icon={ExclamationCircleIcon} />} headingLevel="h2" />
                <EmptyStateBody>
                    <p>{unknown
                        ? _("opbackupd is not running and could not be started. Check that it is installed and that the system bus was reloaded after installing it (systemctl reload dbus).")
                        : _("The service answered with an error:")}</p>
                    {!unknown && <p className="opbackup-detail">{problem ? problem.message || problem.problem : ""}</p>}
                </EmptyStateBody>
            </EmptyState>
        );
    } else if (order.length === 0) {
        body = (
            <EmptyState id="opbackup-no-instances">
                <EmptyStateHeader titleText={_("No OctoPrint instances")} icon={<EmptyStateIcon icon={CubesIcon} />} headingLevel="h2" />
                <EmptyStateBody>
                    {_("The service found no OctoPrint installation. Configure one in /etc/opbackup/instances.d/NAME.conf (see opbackupd.conf(5)); without any, each /home/*/.octoprint is used.")}
                </EmptyStateBody>
            </EmptyState>
        );
    } else {
        body = (
            <Stack hasGutter>
                {order.map(name => (
                    <StackItem key={name}>
                        <InstanceCard inst={instances[name]}
                                      jobs={Object.values(jobs).filter(j => j.Instance === name)}
                                      reloadBackups={() => loadBackups(name, instances[name].path)}
                                      reloadUnknownPlugins={() => loadUnknownPlugins(name, instances[name].path)}
                                      addAlert={alert => addAlert(name, alert)}
                                      dismissAlert={key => patchInstance(name, i => ({ alerts: i.alerts.filter(a => a.key !== key) }))}
                                      remotes={Array.isArray(remotes) ? remotes.filter(r => r.type !== "invalid") : []}
                                      jobStarted={jobStarted} />
                    </StackItem>
                ))}
                <StackItem>
                    <RemotesCard remotes={remotes} instances={order.map(n => instances[n])} />
                </StackItem>
            </Stack>
        );
    }

    return (
        <Page>
            <PageSection variant={PageSectionVariants.light}>
                <TextContent>
                    <Title headingLevel="h1">{_("OctoPrint backups")}</Title>
                    <Text>{_("Backups of the OctoPrint installations on this machine, made and restored by the opbackup service.")}</Text>
                </TextContent>
            </PageSection>
            <PageSection id="opbackup-main" data-phase={phase} data-loaded-ms={loadedAt === null ? "" : Math.round(loadedAt)}>
                {body}
            </PageSection>
        </Page>
    );
}
