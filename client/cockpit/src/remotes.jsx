/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Remotes: where backups are copied to, and each instance's last upload there. */

import React from "react";
import { Alert, Card, CardBody, CardHeader, CardTitle, Label, Title } from "@patternfly/react-core";
import { Table, Thead, Tr, Th, Tbody, Td } from "@patternfly/react-table";

import { formatTime } from "./format.js";

const _ = cockpit.gettext;

export function RemotesCard({ remotes, instances }) {
    const error = remotes && remotes.error;
    if (!error && (!Array.isArray(remotes) || remotes.length === 0))
        return null;
    const lastUpload = remote => {
        const rows = [];
        for (const inst of instances) {
            for (const [r, backup, when, result, err] of (inst.props && inst.props.RemoteStatus) || []) {
                if (r === remote)
                    rows.push({ instance: inst.name, backup, when, result, err });
            }
        }
        return rows;
    };
    return (
        <Card id="opbackup-remotes">
            <CardHeader><CardTitle><Title headingLevel="h2" size="xl">{_("Remotes")}</Title></CardTitle></CardHeader>
            <CardBody>
                {error && <Alert isInline variant="danger" title={_("The remotes could not be listed")}>{error}</Alert>}
                {Array.isArray(remotes) &&
                <Table aria-label={_("Remotes")} variant="compact">
                    <Thead><Tr><Th>{_("Name")}</Th><Th>{_("Type")}</Th><Th>{_("URL")}</Th><Th>{_("Last upload")}</Th></Tr></Thead>
                    <Tbody>
                        {remotes.map(r => (
                            <Tr key={r.name}>
                                <Td dataLabel={_("Name")}>{r.name}</Td>
                                <Td dataLabel={_("Type")}>
                                    {r.type === "invalid" ? <Label color="red">{_("broken configuration")}</Label> : r.type}
                                </Td>
                                <Td dataLabel={_("URL")}>{r.url}</Td>
                                <Td dataLabel={_("Last upload")}>
                                    {lastUpload(r.name).map(u => (
                                        <div key={u.instance}>
                                            {cockpit.format("$0: $1, $2 ", u.instance, u.backup, formatTime(u.when))}
                                            {u.result === "done"
                                                ? <Label color="green" isCompact>{_("done")}</Label>
                                                : <Label color="red" isCompact>{cockpit.format(_("failed: $0"), u.err)}</Label>}
                                        </div>
                                    ))}
                                </Td>
                            </Tr>
                        ))}
                    </Tbody>
                </Table>}
            </CardBody>
        </Card>
    );
}
