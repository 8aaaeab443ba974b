/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Entry point of the Cockpit page "OctoPrint backups". */

import "@patternfly/patternfly/patternfly.css";
import "@patternfly/patternfly/patternfly-theme-dark.css";
import "./page.css";

import React from "react";
import { createRoot } from "react-dom/client";

import { App } from "./app.jsx";

/* Light or dark, as Cockpit's shell is set ("shell:style": light, dark or auto, in localStorage), auto
 * following the browser. Set before the first paint, and followed while the page is open. */
function applyTheme() {
    let style = "auto";
    try {
        style = window.localStorage.getItem("shell:style") || "auto";
    } catch (e) {
        /* no storage: auto */
    }
    const dark = style === "dark" ||
        (style === "auto" && window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches);
    document.documentElement.classList.toggle("pf-v5-theme-dark", dark);
}
applyTheme();
window.addEventListener("storage", e => { if (e.key === "shell:style") applyTheme() });
if (window.matchMedia)
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", applyTheme);
/* The shell tells its pages when the style changes */
window.addEventListener("cockpit-style", applyTheme);

document.addEventListener("DOMContentLoaded", () => {
    document.documentElement.lang = cockpit.language || "en";
    document.title = cockpit.gettext("OctoPrint backups");
    createRoot(document.getElementById("app")).render(<App />);
});
