/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The service on the system bus, as the page uses it: calls, properties, signals, polkit checks.
 * `cockpit` is the global of ../base1/cockpit.js. */

export const BUS_NAME = "org.opbackup.backup1";
export const MANAGER_PATH = "/org/opbackup/backup1";
export const JOB_PATH_PREFIX = "/org/opbackup/backup1/job";
export const IFACE_MANAGER = "org.opbackup.backup1.Manager";
export const IFACE_INSTANCE = "org.opbackup.backup1.Instance";
export const IFACE_JOB = "org.opbackup.backup1.Job";
const IFACE_PROPERTIES = "org.freedesktop.DBus.Properties";

export const ERROR_ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied";
export const ERROR_AUTH_REQUIRED = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired";
export const ERROR_SERVICE_UNKNOWN = "org.freedesktop.DBus.Error.ServiceUnknown";

/* One connection for the whole page. With superuser "try", the calls come from root when the user has
 * turned on Cockpit's administrative access, else from the user. */
let client = null;
export function bus() {
    if (!client)
        client = cockpit.dbus(BUS_NAME, { bus: "system", superuser: "try" });
    return client;
}

export function call(path, iface, method, args = [], timeout) {
    const options = timeout ? { timeout } : undefined;
    return bus().call(path, iface, method, args, options);
}

/* GetAll, with the variants unwrapped: { Name: "x", ... }. */
export async function properties(path, iface) {
    const [props] = await call(path, IFACE_PROPERTIES, "GetAll", [iface]);
    return unwrapAll(props);
}

export function unwrapAll(props) {
    const out = {};
    for (const key in props)
        out[key] = props[key].v;
    return out;
}

/* Is an error a refusal (polkit said no, or would need a password nobody can type here)? */
export function isRefusal(error) {
    return !!error && (error.name === ERROR_ACCESS_DENIED || error.name === ERROR_AUTH_REQUIRED);
}

/* Ask polkit whether this page's connection (its unique bus name: the same caller opbackupd sees) holds
 * an action, without interaction, to show why a button cannot be used instead of letting it fail. polkit
 * lets only privileged callers pass details, so the check is without the "instance" detail the service
 * passes: rules that tell instances apart are not seen here, and the service's own answer to the call
 * still decides. Answers true, false or null (polkit could not be asked). */
let polkitClient = null;
export async function mayDo(action) {
    try {
        await bus().wait();
        const subject = ["system-bus-name", { name: cockpit.variant("s", bus().unique_name) }];
        if (!polkitClient)
            polkitClient = cockpit.dbus("org.freedesktop.PolicyKit1", { bus: "system", superuser: "try" });
        const [[authorized]] = await polkitClient.call(
            "/org/freedesktop/PolicyKit1/Authority", "org.freedesktop.PolicyKit1.Authority",
            "CheckAuthorization", [subject, "org.opbackup.backup1." + action, {}, 0, ""]);
        return authorized;
    } catch (e) {
        console.warn("polkit check of", action, "failed:", e.message);
        return null;
    }
}

/* A descriptor the service returned ("h") reaches the page as the options of a channel on an internal
 * stream of the bridge: { payload: "stream", internal: "internal-stream-N" }. Read through that channel
 * (Cockpit's flow control keeps the bridge from running ahead of the page), the bytes become a Blob, which
 * the browser keeps on disk when it is large. (A channel URL of cockpit-ws would stream it straight into
 * the download, but Cockpit 287 ends such a download after 2 MiB.) */
export function readFd(fdChannel, onProgress) {
    return new Promise((resolve, reject) => {
        const channel = cockpit.channel({ ...fdChannel, binary: true });
        const parts = [];
        let bytes = 0;
        channel.addEventListener("message", (event, data) => {
            parts.push(data);
            bytes += data.length;
            if (onProgress)
                onProgress(bytes);
        });
        channel.addEventListener("close", (event, options) => {
            if (options.problem)
                reject(new Error(cockpit.message(options)));
            else
                resolve(new Blob(parts, { type: "application/zip" }));
        });
    });
}

/* Hands a Blob to the browser as a download named fileName. */
export function saveBlob(blob, fileName) {
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = fileName;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
}
