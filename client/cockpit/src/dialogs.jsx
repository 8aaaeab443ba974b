/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The dialogs: create (with the folders to leave out), upload, prune, delete and restore (confirmations
 * that name what goes away). */

import React, { useState } from "react";
import {
    Alert, Button, Checkbox, FileUpload, Form, FormGroup, FormHelperText, HelperText, HelperTextItem, List,
    ListItem, Modal, ModalVariant, NumberInput, Progress, Text, TextContent,
} from "@patternfly/react-core";

import { call, IFACE_INSTANCE } from "./bus.js";
import { formatBytes, formatTime } from "./format.js";

const _ = cockpit.gettext;

/* The folder ids of Excludable, in words. */
const FOLDER_WORDS = {
    uploads: _("Uploaded files (G-code)"),
    timelapse: _("Timelapses"),
    virtualSd: _("Virtual SD card"),
    plugins: _("Plugins' own files"),
    slicingProfiles: _("Slicing profiles"),
    printerProfiles: _("Printer profiles"),
    scripts: _("GCODE scripts"),
    translations: _("Translations"),
    data: _("Plugins' data"),
};

function DialogError({ error }) {
    if (!error)
        return null;
    return <Alert isInline variant="danger" title={error.title} className="opbackup-dialog-error">{error.message}</Alert>;
}

export function CreateDialog({ inst, onClose, jobStarted }) {
    const excludable = (inst.props && inst.props.Excludable) || [];
    const [excludes, setExcludes] = useState([]);
    const [busy, setBusy] = useState(false);
    const [error, setError] = useState(null);
    const toggle = (id, on) => setExcludes(list => on ? [...list, id] : list.filter(x => x !== id));
    const create = async () => {
        setBusy(true);
        setError(null);
        try {
            const [, path] = await call(inst.path, IFACE_INSTANCE, "CreateBackup", [excludes, {}]);
            jobStarted(path);
            onClose();
        } catch (e) {
            setBusy(false);
            setError({ title: _("The backup could not be started"), message: e.message });
        }
    };
    return (
        <Modal variant={ModalVariant.small} isOpen onClose={onClose} id="opbackup-create-dialog"
               title={cockpit.format(_("Create a backup of $0"), inst.name)}
               actions={[
                   <Button key="create" variant="primary" onClick={create} isLoading={busy} isDisabled={busy}>{_("Create")}</Button>,
                   <Button key="cancel" variant="link" onClick={onClose}>{_("Cancel")}</Button>,
               ]}>
            <Form onSubmit={e => { e.preventDefault(); create() }}>
                <FormGroup role="group" isStack fieldId="opbackup-excludes" label={_("Leave out")}>
                    {excludable.map(id => (
                        <Checkbox key={id} id={"exclude-" + id} name={id} isChecked={excludes.includes(id)}
                                  onChange={(_e, on) => toggle(id, on)}
                                  label={FOLDER_WORDS[id] ? cockpit.format("$0 ($1)", FOLDER_WORDS[id], id) : id} />
                    ))}
                    <FormHelperText>
                        <HelperText><HelperTextItem>{_("Everything else of the instance is in the backup: settings, data, uploads and the list of installed plugins.")}</HelperTextItem></HelperText>
                    </FormHelperText>
                </FormGroup>
            </Form>
            <DialogError error={error} />
        </Modal>
    );
}

export function DeleteDialog({ inst, backup, onClose }) {
    const [busy, setBusy] = useState(false);
    const [error, setError] = useState(null);
    const remove = async () => {
        setBusy(true);
        try {
            await call(inst.path, IFACE_INSTANCE, "DeleteBackup", [backup.name]);
            onClose();   /* BackupDeleted takes it off the list */
        } catch (e) {
            setBusy(false);
            setError({ title: _("The backup could not be deleted"), message: e.message });
        }
    };
    return (
        <Modal variant={ModalVariant.small} isOpen onClose={onClose} titleIconVariant="warning" id="opbackup-delete-dialog"
               title={cockpit.format(_("Delete $0?"), backup.name)}
               actions={[
                   <Button key="delete" variant="danger" onClick={remove} isLoading={busy} isDisabled={busy}>{_("Delete")}</Button>,
                   <Button key="cancel" variant="link" onClick={onClose}>{_("Cancel")}</Button>,
               ]}>
            <TextContent>
                <Text>{cockpit.format(_("$0, the backup of $1 made $2 ($3), is deleted from the backup folder. This cannot be undone."),
                                      backup.name, inst.name, formatTime(backup.mtime), formatBytes(backup.size))}</Text>
            </TextContent>
            <DialogError error={error} />
        </Modal>
    );
}

export function PruneDialog({ inst, onClose, addAlert }) {
    const backups = inst.backups || [];
    const [keep, setKeep] = useState(Math.min(5, backups.length));
    const [busy, setBusy] = useState(false);
    const [error, setError] = useState(null);
    const doomed = backups.slice(keep);
    const prune = async () => {
        setBusy(true);
        try {
            const [deleted] = await call(inst.path, IFACE_INSTANCE, "PruneBackups", [keep, ""]);
            addAlert({ variant: "success", title: cockpit.format(cockpit.ngettext("Deleted $0 backup", "Deleted $0 backups", deleted.length), deleted.length) });
            onClose();
        } catch (e) {
            setBusy(false);
            setError({ title: _("The backups could not be pruned"), message: e.message });
        }
    };
    return (
        <Modal variant={ModalVariant.small} isOpen onClose={onClose} id="opbackup-prune-dialog"
               title={cockpit.format(_("Prune the backups of $0"), inst.name)}
               actions={[
                   <Button key="prune" variant="danger" onClick={prune} isLoading={busy}
                           isDisabled={busy || doomed.length === 0}>
                       {cockpit.format(cockpit.ngettext("Delete $0 backup", "Delete $0 backups", doomed.length), doomed.length)}
                   </Button>,
                   <Button key="cancel" variant="link" onClick={onClose}>{_("Cancel")}</Button>,
               ]}>
            <Form onSubmit={e => e.preventDefault()}>
                <FormGroup fieldId="opbackup-keep" label={_("Keep the newest")}>
                    <NumberInput id="opbackup-keep" value={keep} min={0} max={backups.length}
                                 inputName="keep" inputAriaLabel={_("Number of backups to keep")}
                                 minusBtnAriaLabel={_("Keep one less")} plusBtnAriaLabel={_("Keep one more")}
                                 onMinus={() => setKeep(k => Math.max(0, k - 1))}
                                 onPlus={() => setKeep(k => Math.min(backups.length, k + 1))}
                                 onChange={e => {
                                     const v = parseInt(e.target.value, 10);
                                     setKeep(isNaN(v) ? 0 : Math.max(0, Math.min(backups.length, v)));
                                 }} />
                </FormGroup>
            </Form>
            <TextContent>
                <Text>{doomed.length === 0
                    ? _("Nothing would be deleted.")
                    : _("These are deleted; this cannot be undone:")}</Text>
            </TextContent>
            <List className="opbackup-doomed">
                {doomed.slice(0, 10).map(b => <ListItem key={b.name}>{b.name}</ListItem>)}
                {doomed.length > 10 && <ListItem>{cockpit.format(_("and $0 more"), doomed.length - 10)}</ListItem>}
            </List>
            <DialogError error={error} />
        </Modal>
    );
}

/* UploadBackup: a job copies the backup to the remotes chosen (first the instance's CopyTo=). */
export function CopyDialog({ inst, backup, remotes, onClose, jobStarted }) {
    const copyTo = (inst.props && inst.props.Remotes) || [];
    const [chosen, setChosen] = useState(remotes.filter(r => copyTo.includes(r.name)).map(r => r.name));
    const [busy, setBusy] = useState(false);
    const [error, setError] = useState(null);
    const copy = async () => {
        setBusy(true);
        try {
            const [, path] = await call(inst.path, IFACE_INSTANCE, "UploadBackup", [backup.name, chosen]);
            jobStarted(path);
            onClose();
        } catch (e) {
            setBusy(false);
            setError({ title: _("The copy could not be started"), message: e.message });
        }
    };
    return (
        <Modal variant={ModalVariant.small} isOpen onClose={onClose} id="opbackup-copy-dialog"
               title={cockpit.format(_("Copy $0 to remotes"), backup.name)}
               actions={[
                   <Button key="copy" variant="primary" onClick={copy} isLoading={busy} isDisabled={busy || chosen.length === 0}>{_("Copy")}</Button>,
                   <Button key="cancel" variant="link" onClick={onClose}>{_("Cancel")}</Button>,
               ]}>
            <Form onSubmit={e => e.preventDefault()}>
                <FormGroup role="group" isStack fieldId="opbackup-remotes-chosen" label={_("Remotes")}>
                    {remotes.map(r => (
                        <Checkbox key={r.name} id={"remote-" + r.name} isChecked={chosen.includes(r.name)}
                                  onChange={(_e, on) => setChosen(l => on ? [...l, r.name] : l.filter(x => x !== r.name))}
                                  label={r.name} description={cockpit.format("$0, $1", r.type, r.url)} />
                    ))}
                </FormGroup>
            </Form>
            <TextContent>
                <Text>{_("Each copy goes to a temporary name and is checked before it gets the backup's name.")}</Text>
            </TextContent>
            <DialogError error={error} />
        </Modal>
    );
}

export function RestoreDialog({ inst, backup, onClose, jobStarted }) {
    const props = inst.props || {};
    const [skipPlugins, setSkipPlugins] = useState(false);
    const [keepPrevious, setKeepPrevious] = useState(false);
    const [busy, setBusy] = useState(false);
    const [error, setError] = useState(null);
    const restore = async () => {
        setBusy(true);
        try {
            const options = {
                "skip-plugins": cockpit.variant("b", skipPlugins),
                "keep-previous": cockpit.variant("b", keepPrevious),
            };
            const [, path] = await call(inst.path, IFACE_INSTANCE, "RestoreBackup", [backup.name, options]);
            jobStarted(path);
            onClose();
        } catch (e) {
            setBusy(false);
            setError({ title: _("The restore could not be started"), message: e.message });
        }
    };
    const kept = [_("the backup folder"), _("OctoPrint's logs")];
    if (backup.excludes.length)
        kept.push(cockpit.format(_("the folders this backup left out ($0)"), backup.excludes.join(", ")));
    return (
        <Modal variant={ModalVariant.medium} isOpen onClose={onClose} titleIconVariant="warning" id="opbackup-restore-dialog"
               title={cockpit.format(_("Restore $0 from $1?"), inst.name, backup.name)}
               actions={[
                   <Button key="restore" variant="danger" onClick={restore} isLoading={busy} isDisabled={busy}>{_("Restore")}</Button>,
                   <Button key="cancel" variant="link" onClick={onClose}>{_("Cancel")}</Button>,
               ]}>
            <TextContent>
                <Text className="opbackup-replaced">
                    {cockpit.format(_("OctoPrint's files in $0 (settings, data, uploads and plugins) are replaced by the backup made $1 by OctoPrint $2. Everything changed since then is lost."),
                                    props.Basedir, formatTime(backup.mtime), backup.version)}
                </Text>
                <Text>{cockpit.format(_("Kept: $0."), kept.join(", "))}</Text>
                <Text>{_("The plugins the backup lists are reinstalled, and OctoPrint is restarted. The whole archive is checked before anything changes; a refused restore changes nothing.")}</Text>
            </TextContent>
            <Form onSubmit={e => e.preventDefault()}>
                <Checkbox id="opbackup-skip-plugins" isChecked={skipPlugins} onChange={(_e, v) => setSkipPlugins(v)}
                          label={_("Do not reinstall plugins")} />
                <Checkbox id="opbackup-keep-previous" isChecked={keepPrevious} onChange={(_e, v) => setKeepPrevious(v)}
                          label={cockpit.format(_("Keep the replaced files as $0"), props.Basedir + ".opbackup-old")} />
            </Form>
            <DialogError error={error} />
        </Modal>
    );
}

/* An upload goes through `opbackupctl import -`: a page cannot pass a descriptor over the bus, so the
 * file is streamed to the client's stdin, which keeps it in an unnamed file and passes that descriptor
 * to ImportBackup — the service's own checks apply as for any import. */
/* Resolves once the bridge has answered a new channel: it has then read everything sent before. */
function roundTrip() {
    const channel = cockpit.channel({ payload: "null", superuser: "try" });
    return channel.wait().finally(() => channel.close());
}

export function UploadDialog({ inst, onClose, addAlert, reloadBackups }) {
    const [file, setFile] = useState(null);
    const [sent, setSent] = useState(null);
    const [error, setError] = useState(null);
    const [proc, setProc] = useState(null);
    const CHUNK = 256 * 1024;

    const upload = async () => {
        setError(null);
        setSent(0);
        const argv = ["opbackupctl", "--json", "-i", inst.name, "import", "-"];
        if (/^[A-Za-z0-9][A-Za-z0-9._-]*\.zip$/.test(file.name))
            argv.push("--name", file.name);
        const p = cockpit.spawn(argv, { superuser: "try", err: "message", binary: true });
        setProc(p);
        const done = p.then(out => JSON.parse(new TextDecoder().decode(out)));
        try {
            for (let offset = 0; offset < file.size; offset += CHUNK) {
                const chunk = new Uint8Array(await file.slice(offset, offset + CHUNK).arrayBuffer());
                p.input(chunk, true);
                /* Cockpit 287's channels have no flow control for what a page sends: every few MiB,
                 * wait until the bridge has taken what was sent (a round trip on the same
                 * connection), so the browser does not queue the whole file. */
                if ((offset / CHUNK) % 8 === 7)
                    await roundTrip();
                setSent(Math.min(file.size, offset + CHUNK));
            }
            p.input(null, false);
            const result = await done;
            addAlert({ variant: "success", title: cockpit.format(_("Uploaded $0 as $1"), file.name, result.name) });
            reloadBackups();
            onClose();
        } catch (e) {
            setSent(null);
            setProc(null);
            setError({ title: cockpit.format(_("$0 could not be imported"), file.name), message: (e.message || String(e)).trim() });
        }
    };
    const cancel = () => {
        if (proc)
            proc.close("cancelled");
        onClose();
    };
    return (
        <Modal variant={ModalVariant.small} isOpen onClose={cancel} id="opbackup-upload-dialog"
               title={cockpit.format(_("Upload a backup to $0"), inst.name)}
               actions={[
                   <Button key="upload" variant="primary" onClick={upload} isDisabled={!file || sent !== null}
                           isLoading={sent !== null}>{_("Upload")}</Button>,
                   <Button key="cancel" variant="link" onClick={cancel}>{_("Cancel")}</Button>,
               ]}>
            <Form onSubmit={e => e.preventDefault()}>
                <FormGroup fieldId="opbackup-upload-file" label={_("Backup (zip made by OctoPrint or opbackup)")}>
                    <FileUpload id="opbackup-upload-file" filename={file ? file.name : ""} value={file || ""}
                                browseButtonText={_("Choose…")} clearButtonText={_("Clear")}
                                filenamePlaceholder={_("No file chosen")} hideDefaultPreview
                                dropzoneProps={{ accept: { "application/zip": [".zip"] } }}
                                onFileInputChange={(_e, f) => setFile(f)} onClearClick={() => setFile(null)} />
                </FormGroup>
            </Form>
            {sent !== null && file &&
            <Progress value={file.size ? Math.round(100 * sent / file.size) : 100} title={_("Uploading")}
                      helperText={cockpit.format(_("$0 of $1"), formatBytes(sent), formatBytes(file.size))} />}
            <DialogError error={error} />
        </Modal>
    );
}
