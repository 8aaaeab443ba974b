/* SPDX-License-Identifier: GPL-2.0-or-later */

/* One instance: what it is, its jobs with their progress, its backups and what can be done with them. */

import React, { useState } from "react";
import {
    Alert, AlertActionCloseButton, AlertGroup, Button, Card, CardBody, CardHeader, CardTitle,
    DescriptionList, DescriptionListDescription, DescriptionListGroup, DescriptionListTerm, EmptyState,
    EmptyStateBody, EmptyStateHeader, ExpandableSection, Flex, FlexItem, Label, List, ListItem, Pagination,
    Progress, Title, Toolbar, ToolbarContent, ToolbarItem, Tooltip,
} from "@patternfly/react-core";
import { Table, Thead, Tr, Th, Tbody, Td } from "@patternfly/react-table";

import { call, readFd, saveBlob, IFACE_INSTANCE, IFACE_JOB } from "./bus.js";
import { formatBytes, formatTime, stageLabel, operationLabel } from "./format.js";
import { CopyDialog, CreateDialog, DeleteDialog, PruneDialog, RestoreDialog, UploadDialog } from "./dialogs.jsx";

const _ = cockpit.gettext;

const NEEDS_ADMIN = _("Restoring replaces OctoPrint's files and needs administrative access. Turn on administrative access in Cockpit's top bar, or ask an administrator.");
const NO_CREATE = _("You may not create backups of this instance: ask an administrator to add you to the group “opbackup”.");
const NO_DELETE = _("You may not delete backups of this instance: ask an administrator to add you to the group “opbackup”.");

function Guarded({ reason, children }) {
    /* A button that cannot be used says why (a tooltip, and for screen readers the description). */
    if (!reason)
        return children;
    return <Tooltip content={reason}>{children}</Tooltip>;
}

export function JobProgress({ job }) {
    const counts = job.BytesTotal > 0
        ? cockpit.format(_("$0 of $1"), formatBytes(job.BytesDone), formatBytes(job.BytesTotal))
        : job.ItemsTotal > 0
            ? cockpit.format(_("$0 of $1"), job.ItemsDone, job.ItemsTotal)
            : job.ItemsDone > 0 ? cockpit.format(_("$0 files found"), job.ItemsDone) : "";
    const title = cockpit.format(_("$0 $1: $2"), operationLabel(job.Operation), job.Name, stageLabel(job.Stage));
    const [canceling, setCanceling] = useState(false);
    const [cancelError, setCancelError] = useState(null);
    const cancel = () => {
        setCanceling(true);
        call(job.path, IFACE_JOB, "Cancel", []).catch(e => {
            setCanceling(false);
            setCancelError(e.message);
        });
    };
    return (
        <div className="opbackup-job" data-job-stage={job.Stage} data-job-operation={job.Operation}>
            <Flex alignItems={{ default: "alignItemsCenter" }}>
                <FlexItem grow={{ default: "grow" }}>
                    <Progress value={Math.round((job.Progress || 0) * 100)} title={title}
                              helperText={counts} aria-label={title} />
                </FlexItem>
                <FlexItem>
                    {job.Stage !== "swapping" &&
                    <Button variant="secondary" onClick={cancel} isDisabled={canceling}
                            aria-label={cockpit.format(_("Cancel $0"), job.Name)}>
                        {_("Cancel")}
                    </Button>}
                </FlexItem>
            </Flex>
            {cancelError && <Alert isInline isPlain variant="danger" title={cancelError} />}
            {job.Operation === "restore" && job.log.length > 0 && <JobLog lines={job.log} />}
        </div>
    );
}

function JobLog({ lines }) {
    return (
        <pre className="opbackup-log" aria-label={_("Restore log")} tabIndex={0}>
            {lines.map((l, i) => <span key={i} className={"opbackup-log-" + l.level}>{l.line + "\n"}</span>)}
        </pre>
    );
}

function Outcome({ alert, onClose }) {
    return (
        <Alert isInline variant={alert.variant} title={alert.title} className="opbackup-outcome"
               data-outcome={alert.variant}
               actionClose={<AlertActionCloseButton onClose={onClose} />}>
            {alert.body && <p>{alert.body}</p>}
            {alert.unknown && alert.unknown.length > 0 &&
            <>
                <p>{_("These plugins could not be reinstalled; install them by hand:")}</p>
                <UnknownPluginList plugins={alert.unknown.map(([key, name, homepage]) => ({ key, name, homepage }))} />
            </>}
            {alert.log && alert.log.length > 0 &&
            <ExpandableSection toggleText={_("Log")}><JobLog lines={alert.log} /></ExpandableSection>}
        </Alert>
    );
}

function UnknownPluginList({ plugins }) {
    return (
        <List>
            {plugins.map(p => (
                <ListItem key={p.key}>
                    {p.homepage
                        ? <a href={p.homepage} target="_blank" rel="noopener noreferrer">{p.name || p.key}</a>
                        : (p.name || p.key)}
                    {" "}<small>({p.key})</small>
                </ListItem>
            ))}
        </List>
    );
}

function InstanceFacts({ props, may }) {
    const fact = (term, value, id) => (
        <DescriptionListGroup>
            <DescriptionListTerm>{term}</DescriptionListTerm>
            <DescriptionListDescription id={id}>{value}</DescriptionListDescription>
        </DescriptionListGroup>
    );
    let restore;
    if (!props.RestoreSupported)
        restore = cockpit.format(_("Not possible: $0"), props.RestoreUnsupportedReason);
    else if (may.restore === false)
        restore = _("Possible, by an administrator");
    else
        restore = _("Possible");
    return (
        <DescriptionList isCompact isHorizontal columnModifier={{ lg: "2Col" }}>
            {fact(_("OctoPrint version"), props.OctoPrintVersion || _("unknown"))}
            {fact(_("Free space"), formatBytes(props.FreeSpace))}
            {fact(_("Basedir"), props.Basedir)}
            {fact(_("Backup folder"), props.BackupFolder || _("unknown"))}
            {fact(_("User"), props.User)}
            {fact(_("Restore"), restore)}
            {props.Keep > 0 && fact(_("Scheduled backups keep"), cockpit.format(_("the newest $0"), props.Keep))}
            {props.Remotes && props.Remotes.length > 0 && fact(_("Copied to"), props.Remotes.join(", "))}
        </DescriptionList>
    );
}

function BackupsTable({ inst, may, onDownload, onRestore, onDelete, onCopy, restoreBlocked, downloading }) {
    const [page, setPage] = useState(1);
    const [perPage, setPerPage] = useState(20);
    const backups = inst.backups || [];
    if (inst.backupsError)
        return <Alert isInline variant="danger" title={_("The backups could not be listed")}>{inst.backupsError}</Alert>;
    if (inst.backups === null)
        return <p>{_("Loading backups…")}</p>;
    if (backups.length === 0) {
        return (
            <EmptyState variant="xs" className="opbackup-no-backups">
                <EmptyStateHeader titleText={_("No backups yet")} headingLevel="h4" />
                <EmptyStateBody>{_("Create one with “Create backup”, or upload a zip made by OctoPrint.")}</EmptyStateBody>
            </EmptyState>
        );
    }
    const first = (page - 1) * perPage;
    const shown = backups.slice(first, first + perPage);
    return (
        <>
            <Table aria-label={cockpit.format(_("Backups of $0"), inst.name)} variant="compact" className="opbackup-backups">
                <Thead>
                    <Tr>
                        <Th>{_("Name")}</Th>
                        <Th>{_("Date")}</Th>
                        <Th>{_("Size")}</Th>
                        <Th>{_("OctoPrint")}</Th>
                        <Th>{_("Left out")}</Th>
                        <Th screenReaderText={_("Actions")} />
                    </Tr>
                </Thead>
                <Tbody>
                    {shown.map(b => (
                        <Tr key={b.name} data-backup={b.name}>
                            <Td dataLabel={_("Name")} className="opbackup-name">{b.name}</Td>
                            <Td dataLabel={_("Date")}>{formatTime(b.mtime)}</Td>
                            <Td dataLabel={_("Size")}>{formatBytes(b.size)}</Td>
                            <Td dataLabel={_("OctoPrint")}>{b.version}</Td>
                            <Td dataLabel={_("Left out")}>
                                {b.excludes.length ? b.excludes.map(e => <Label key={e} isCompact className="opbackup-exclude">{e}</Label>) : "—"}
                            </Td>
                            <Td isActionCell modifier="nowrap">
                                <div className="opbackup-actions">
                                    <Button variant="link" isInline onClick={() => onDownload(b)}
                                            isDisabled={b.name in downloading}
                                            aria-label={cockpit.format(_("Download $0"), b.name)}>
                                        {b.name in downloading
                                            ? cockpit.format(_("Downloading… $0%"), b.size ? Math.floor(100 * downloading[b.name] / b.size) : 0)
                                            : _("Download")}
                                    </Button>
                                    {onCopy &&
                                    <Guarded reason={may.create === false ? NO_CREATE : null}>
                                        <Button variant="link" isInline isAriaDisabled={may.create === false}
                                                onClick={() => onCopy(b)}
                                                aria-label={cockpit.format(_("Copy $0 to remotes"), b.name)}>{_("Copy to remote")}</Button>
                                    </Guarded>}
                                    <Guarded reason={restoreBlocked}>
                                        <Button variant="link" isInline isAriaDisabled={!!restoreBlocked}
                                                onClick={() => onRestore(b)}
                                                aria-label={cockpit.format(_("Restore $0"), b.name)}>{_("Restore")}</Button>
                                    </Guarded>
                                    <Guarded reason={may.delete === false ? NO_DELETE : null}>
                                        <Button variant="link" isInline isDanger isAriaDisabled={may.delete === false}
                                                onClick={() => onDelete(b)}
                                                aria-label={cockpit.format(_("Delete $0"), b.name)}>{_("Delete")}</Button>
                                    </Guarded>
                                </div>
                            </Td>
                        </Tr>
                    ))}
                </Tbody>
            </Table>
            {backups.length > 20 &&
            <Pagination itemCount={backups.length} perPage={perPage} page={page} variant="bottom" isCompact
                        onSetPage={(_e, p) => setPage(p)} onPerPageSelect={(_e, pp) => { setPerPage(pp); setPage(1) }} />}
        </>
    );
}

export function InstanceCard({ inst, jobs, remotes, reloadBackups, reloadUnknownPlugins, addAlert, dismissAlert, jobStarted }) {
    const [dialog, setDialog] = useState(null);   // { kind, backup }
    const [actionError, setActionError] = useState(null);
    const [downloading, setDownloading] = useState({});   // backup name -> bytes read so far
    const props = inst.props;
    const may = inst.may;

    const download = async backup => {
        setActionError(null);
        try {
            setDownloading(d => ({ ...d, [backup.name]: 0 }));
            const [fd] = await call(inst.path, IFACE_INSTANCE, "OpenBackup", [backup.name]);
            const blob = await readFd(fd, bytes => setDownloading(d => ({ ...d, [backup.name]: bytes })));
            saveBlob(blob, backup.name);
        } catch (e) {
            setActionError({ title: cockpit.format(_("$0 could not be downloaded"), backup.name), message: e.message });
        } finally {
            setDownloading(d => {
                const next = { ...d };
                delete next[backup.name];
                return next;
            });
        }
    };

    let restoreBlocked = null;
    if (props && !props.RestoreSupported)
        restoreBlocked = cockpit.format(_("Restore is not possible for this instance: $0"), props.RestoreUnsupportedReason);
    else if (may.restore === false)
        restoreBlocked = NEEDS_ADMIN;

    const usable = props ? props.Usable : true;
    const closeDialog = () => setDialog(null);

    return (
        <Card id={"instance-" + inst.name} className="opbackup-instance" data-instance={inst.name}
              data-may-restore={String(may.restore)} data-backup-count={inst.backups ? inst.backups.length : ""}>
            <CardHeader>
                <CardTitle>
                    <Flex alignItems={{ default: "alignItemsCenter" }}>
                        <Title headingLevel="h2" size="xl">{inst.name}</Title>
                        {props && (usable
                            ? <Label color="green" className="opbackup-status">{_("Ready")}</Label>
                            : <Label color="red" className="opbackup-status">{_("Unusable")}</Label>)}
                        {jobs.length > 0 && <Label color="blue">{_("Working")}</Label>}
                    </Flex>
                </CardTitle>
            </CardHeader>
            <CardBody>
                {inst.propsError && <Alert isInline variant="danger" title={_("The instance could not be read")}>{inst.propsError}</Alert>}
                {props && !usable &&
                <Alert isInline variant="danger" title={_("This instance cannot be used")} className="opbackup-unusable">
                    {props.UnusableReason}
                </Alert>}
                {props && <InstanceFacts props={props} may={may} />}
                {props && usable && may.restore === false && props.RestoreSupported &&
                <Alert isInline isPlain variant="info" title={NEEDS_ADMIN} className="opbackup-restore-note" />}
                {actionError && <Alert isInline variant="danger" title={actionError.title}
                                       actionClose={<AlertActionCloseButton onClose={() => setActionError(null)} />}>
                    {actionError.message}
                </Alert>}
                {inst.alerts.length > 0 &&
                <AlertGroup aria-live="polite" className="opbackup-outcomes">
                    {inst.alerts.map(a => <Outcome key={a.key} alert={a} onClose={() => dismissAlert(a.key)} />)}
                </AlertGroup>}
                {jobs.length > 0 &&
                <section className="opbackup-jobs" aria-label={_("Running jobs")}>
                    {jobs.map(j => <JobProgress key={j.path} job={j} />)}
                </section>}
                <Toolbar inset={{ default: "insetNone" }}>
                    <ToolbarContent>
                        <ToolbarItem>
                            <Guarded reason={may.create === false ? NO_CREATE : null}>
                                <Button variant="primary" isAriaDisabled={!usable || may.create === false || !props}
                                        onClick={() => setDialog({ kind: "create" })}>{_("Create backup")}</Button>
                            </Guarded>
                        </ToolbarItem>
                        <ToolbarItem>
                            <Guarded reason={may.create === false ? NO_CREATE : null}>
                                <Button variant="secondary" isAriaDisabled={!usable || may.create === false}
                                        onClick={() => setDialog({ kind: "upload" })}>{_("Upload backup")}</Button>
                            </Guarded>
                        </ToolbarItem>
                        <ToolbarItem>
                            <Guarded reason={may.delete === false ? NO_DELETE : null}>
                                <Button variant="secondary" isAriaDisabled={!usable || may.delete === false || !(inst.backups && inst.backups.length)}
                                        onClick={() => setDialog({ kind: "prune" })}>{_("Prune")}</Button>
                            </Guarded>
                        </ToolbarItem>
                    </ToolbarContent>
                </Toolbar>
                <Title headingLevel="h3" size="lg">{_("Backups")}</Title>
                <BackupsTable inst={inst} may={may} restoreBlocked={restoreBlocked} downloading={downloading}
                              onDownload={download}
                              onRestore={b => setDialog({ kind: "restore", backup: b })}
                              onDelete={b => setDialog({ kind: "delete", backup: b })}
                              onCopy={remotes.length ? b => setDialog({ kind: "copy", backup: b }) : null} />
                {inst.unknownPlugins.length > 0 &&
                <section className="opbackup-unknown-plugins">
                    <Title headingLevel="h3" size="lg">{_("Plugins the last restore could not reinstall")}</Title>
                    <UnknownPluginList plugins={inst.unknownPlugins} />
                    <Button variant="link" isInline isAriaDisabled={may.delete === false}
                            onClick={() => call(inst.path, IFACE_INSTANCE, "ClearUnknownPlugins", [])
                                .then(reloadUnknownPlugins)
                                .catch(e => setActionError({ title: _("The list could not be cleared"), message: e.message }))}>
                        {_("Forget this list")}
                    </Button>
                </section>}
            </CardBody>
            {dialog && dialog.kind === "create" &&
            <CreateDialog inst={inst} onClose={closeDialog} jobStarted={jobStarted} />}
            {dialog && dialog.kind === "upload" &&
            <UploadDialog inst={inst} onClose={closeDialog} addAlert={addAlert} reloadBackups={reloadBackups} />}
            {dialog && dialog.kind === "prune" &&
            <PruneDialog inst={inst} onClose={closeDialog} addAlert={addAlert} />}
            {dialog && dialog.kind === "delete" &&
            <DeleteDialog inst={inst} backup={dialog.backup} onClose={closeDialog} />}
            {dialog && dialog.kind === "copy" &&
            <CopyDialog inst={inst} backup={dialog.backup} remotes={remotes} onClose={closeDialog} jobStarted={jobStarted} />}
            {dialog && dialog.kind === "restore" &&
            <RestoreDialog inst={inst} backup={dialog.backup} onClose={closeDialog} jobStarted={jobStarted} />}
        </Card>
    );
}
