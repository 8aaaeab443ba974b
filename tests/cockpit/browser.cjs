// SPDX-License-Identifier: GPL-2.0-or-later
// Drives the Cockpit page "OctoPrint backups" in Debian's chromium with puppeteer-core, as one user would:
//
//   node browser.cjs MODE URL SHOTS_DIR PARAMS_JSON
//
// MODE: member (list, create with progress, download, upload, delete, prune), outsider (refused), admin
// (restore confirmation and a restore), copy (to a remote), cancel (a running backup), bench (time to the listed instance). Screenshots go to SHOTS_DIR/<state>.png.
// The last line printed is a JSON object with what was seen; the caller (test-cockpit.py, bench) checks it.
// Waits are for DOM states, never sleeps.

const fs = require("node:fs");
const path = require("node:path");
const puppeteer = require("puppeteer-core");

const [mode, url, shots, paramsJson] = process.argv.slice(2);
const params = JSON.parse(paramsJson || "{}");
const TIMEOUT = 20000;
const result = { mode, console: [], pageErrors: [] };

async function shot(page, name) {
    const file = path.join(shots, name + ".png");
    await page.screenshot({ path: file, fullPage: true });
    (result.screenshots = result.screenshots || []).push(file);
}

async function text(page, selector) {
    return page.$eval(selector, e => e.textContent);
}

/* A button by its visible text, inside scope (a selector); the first one that is shown. */
// A button of a backup's row, pressed once the page has settled: the row's buttons are there as soon as the
// list is, but the page may still move them (the notes that follow polkit's answers push the table down), so
// a click at the coordinates seen a moment earlier could land beside them. The element's own click() is what
// a mouse click on it does: React's handler runs.
async function pressRowButton(page, selector) {
    await page.waitForFunction(sel => {
        const b = document.querySelector(sel);
        return b && b.offsetParent !== null && b.getAttribute("aria-disabled") !== "true" && !b.disabled;
    }, { timeout: TIMEOUT }, selector);
    await page.$eval(selector, b => b.click());
}

async function clickButton(page, scope, label) {
    const handle = await page.waitForFunction((scopeSel, want) => {
        const root = document.querySelector(scopeSel);
        if (!root)
            return null;
        for (const b of root.querySelectorAll("button")) {
            if (b.textContent.trim() === want && b.offsetParent !== null && b.getAttribute("aria-disabled") !== "true" && !b.disabled)
                return b;
        }
        return null;
    }, { timeout: TIMEOUT }, scope, label);
    await handle.asElement().click();
}

async function waitGone(page, selector) {
    await page.waitForFunction(sel => !document.querySelector(sel), { timeout: TIMEOUT }, selector);
}

async function member(page, browser) {
    const inst = `[data-instance="${params.instance}"]`;
    await page.waitForSelector(`${inst} .opbackup-status`, { timeout: TIMEOUT });
    result.status = await text(page, `${inst} .opbackup-status`);
    result.facts = await text(page, `${inst} .pf-v5-c-description-list`);
    await page.waitForSelector(`tr[data-backup="${params.existing}"]`, { timeout: TIMEOUT });
    result.rows = await page.$$eval(`${inst} tr[data-backup]`, rows => rows.map(r => r.dataset.backup));
    // What polkit says this user may do comes after the list.
    await page.waitForSelector(`${inst}:not([data-may-restore=null])`, { timeout: TIMEOUT });
    result.restoreDisabled = await page.$eval(`button[aria-label="Restore ${params.existing}"]`, b => b.getAttribute("aria-disabled"));
    result.restoreNote = await page.$eval(`${inst} .opbackup-restore-note`, e => e.textContent).catch(() => null);
    await shot(page, "instance-list");

    // A backup made elsewhere (opbackupctl, by the caller once this file exists) appears without a reload.
    if (params.liveMarker) {
        fs.writeFileSync(params.liveMarker, "listed\n");
        await page.waitForSelector(`tr[data-backup="${params.liveName}"]`, { timeout: 60000 });
        result.liveSeen = true;
    }

    // Keyboard: the create dialog opens from the keyboard, takes the focus, and Escape closes it.
    await page.evaluate(sel => {
        for (const b of document.querySelectorAll(sel + " button"))
            if (b.textContent.trim() === "Create backup")
                b.focus();
    }, inst);
    await page.keyboard.press("Enter");
    await page.waitForSelector("#opbackup-create-dialog", { timeout: TIMEOUT });
    await page.waitForFunction(() => document.querySelector("#opbackup-create-dialog").contains(document.activeElement),
                               { timeout: TIMEOUT });
    result.dialogFocus = await page.evaluate(() => document.activeElement.textContent || document.activeElement.getAttribute("aria-label"));
    await page.keyboard.press("Escape");
    await waitGone(page, "#opbackup-create-dialog");
    result.keyboard = true;
    await page.$eval(`${inst} .opbackup-backups`, e => e.scrollIntoView());
    await shot(page, "backup-list");

    // Create, watching every state the job shows: stage and progress bar.
    await page.evaluate(() => {
        window.__jobStates = [];
        const record = () => {
            for (const j of document.querySelectorAll(".opbackup-job")) {
                const bar = j.querySelector("[role=progressbar]");
                window.__jobStates.push({ stage: j.dataset.jobStage, bar: !!bar, value: bar ? bar.getAttribute("aria-valuenow") : null,
                                          title: j.textContent });
            }
        };
        new MutationObserver(record).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
    });
    const outcomesBefore = await page.$$eval(`${inst} .opbackup-outcome`, l => l.length);
    await clickButton(page, inst, "Create backup");
    await page.waitForSelector("#opbackup-create-dialog", { timeout: TIMEOUT });
    await page.click(`#exclude-${params.exclude}`);
    await clickButton(page, "#opbackup-create-dialog", "Create");
    await page.waitForSelector(`${inst} .opbackup-job [role=progressbar]`, { timeout: TIMEOUT });
    await shot(page, "backup-in-progress");
    await page.waitForFunction((sel, n) => document.querySelectorAll(sel).length > n, { timeout: 60000 },
                               `${inst} .opbackup-outcome`, outcomesBefore);
    result.outcome = await page.$eval(`${inst} .opbackup-outcome`, e => ({ variant: e.dataset.outcome, text: e.textContent }));
    result.jobStates = await page.evaluate(() => window.__jobStates);
    const m = /Backup (\S+\.zip) created/.exec(result.outcome.text);
    result.created = m ? m[1] : null;
    if (result.created) {
        await page.waitForSelector(`tr[data-backup="${result.created}"]`, { timeout: TIMEOUT });
        result.createdExcludes = await page.$$eval(`tr[data-backup="${result.created}"] .opbackup-exclude`, ls => ls.map(l => l.textContent));
        result.firstRow = await page.$eval(`${inst} tr[data-backup]`, r => r.dataset.backup);
    }
    await shot(page, "backup-created");

    // Download: the browser saves it; the caller compares the bytes with the backup folder's file.
    const cdp = await browser.target().createCDPSession();
    await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: params.downloads, eventsEnabled: true });
    const finished = new Promise((resolve, reject) => {
        cdp.on("Browser.downloadProgress", e => {
            if (e.state === "completed")
                resolve(e);
            else if (e.state === "canceled")
                reject(new Error("download canceled"));
        });
        setTimeout(() => reject(new Error("download did not finish")), 30000);
    });
    await pressRowButton(page, `button[aria-label="Download ${params.existing}"]`);
    await finished;
    result.downloaded = fs.readdirSync(params.downloads);

    // Upload a zip from the browser (through opbackupctl import -), then one that is not a backup.
    await clickButton(page, inst, "Upload backup");
    await page.waitForSelector("#opbackup-upload-dialog", { timeout: TIMEOUT });
    await (await page.$("#opbackup-upload-dialog input[type=file]")).uploadFile(params.upload);
    await clickButton(page, "#opbackup-upload-dialog", "Upload");
    await page.waitForSelector(`tr[data-backup="${path.basename(params.upload)}"]`, { timeout: TIMEOUT });
    await waitGone(page, "#opbackup-upload-dialog");
    result.uploadOutcome = await text(page, `${inst} .opbackup-outcome`);
    await clickButton(page, inst, "Upload backup");
    await page.waitForSelector("#opbackup-upload-dialog", { timeout: TIMEOUT });
    await (await page.$("#opbackup-upload-dialog input[type=file]")).uploadFile(params.badUpload);
    await clickButton(page, "#opbackup-upload-dialog", "Upload");
    await page.waitForSelector("#opbackup-upload-dialog .opbackup-dialog-error", { timeout: TIMEOUT });
    result.badUploadError = await text(page, "#opbackup-upload-dialog .opbackup-dialog-error");
    await shot(page, "upload-refused");
    await clickButton(page, "#opbackup-upload-dialog", "Cancel");
    await waitGone(page, "#opbackup-upload-dialog");

    // Delete the new backup, with its confirmation.
    if (result.created) {
        await pressRowButton(page, `button[aria-label="Delete ${result.created}"]`);
        await page.waitForSelector("#opbackup-delete-dialog", { timeout: TIMEOUT });
        result.deleteDialog = await text(page, "#opbackup-delete-dialog");
        await shot(page, "delete-confirmation");
        await clickButton(page, "#opbackup-delete-dialog", "Delete");
        await waitGone(page, `tr[data-backup="${result.created}"]`);
        await waitGone(page, "#opbackup-delete-dialog");
        result.rowsAfterDelete = await page.$$eval(`${inst} tr[data-backup]`, rows => rows.map(r => r.dataset.backup).sort());
    }

    // Prune to the newest one: the dialog names what goes.
    await clickButton(page, inst, "Prune");
    await page.waitForSelector("#opbackup-prune-dialog", { timeout: TIMEOUT });
    await page.click("#opbackup-prune-dialog input[name=keep]", { clickCount: 3 });
    await page.keyboard.type("1");
    await page.waitForFunction(n => document.querySelectorAll("#opbackup-prune-dialog .opbackup-doomed li").length === n,
                               { timeout: TIMEOUT }, result.rowsAfterDelete.length - 1);
    result.pruneDoomed = await page.$$eval("#opbackup-prune-dialog .opbackup-doomed li", ls => ls.map(l => l.textContent));
    await page.evaluate(() => {
        for (const b of document.querySelectorAll("#opbackup-prune-dialog button"))
            if (b.textContent.startsWith("Delete"))
                b.click();
    });
    await waitGone(page, "#opbackup-prune-dialog");
    await page.waitForFunction(sel => document.querySelectorAll(sel + " tr[data-backup]").length === 1, { timeout: TIMEOUT }, inst);
    result.rowsAfterPrune = await page.$$eval(`${inst} tr[data-backup]`, rows => rows.map(r => r.dataset.backup));
}

async function outsider(page) {
    await page.waitForSelector("#opbackup-main:not([data-phase=loading])", { timeout: TIMEOUT });
    result.phase = await page.$eval("#opbackup-main", e => e.dataset.phase);
    result.text = await text(page, "#opbackup-main");
    result.buttons = await page.$$eval("#opbackup-main button", bs => bs.map(b => b.textContent));
    await shot(page, params.shot || "outsider");
}

async function admin(page) {
    const inst = `[data-instance="${params.instance}"]`;
    await page.waitForSelector(`tr[data-backup="${params.existing}"]`, { timeout: TIMEOUT });
    // The polkit answer comes after the list: wait until the page knows the button may be used.
    await page.waitForFunction(sel => {
        const b = document.querySelector(sel);
        return b && b.getAttribute("aria-disabled") !== "true" && !document.querySelector(".opbackup-restore-note");
    }, { timeout: TIMEOUT }, `button[aria-label="Restore ${params.existing}"]`);
    // The plugins the last restore could not reinstall, with their homepages.
    if (params.unknownPlugin) {
        await page.waitForSelector(`${inst} .opbackup-unknown-plugins a`, { timeout: TIMEOUT });
        result.unknownPlugins = await page.$$eval(`${inst} .opbackup-unknown-plugins a`,
                                                  as => as.map(a => ({ text: a.textContent, href: a.getAttribute("href") })));
    }
    // The remotes: name, type, URL (without credentials).
    await page.waitForSelector("#opbackup-remotes tbody tr", { timeout: TIMEOUT });
    result.remotes = await page.$$eval("#opbackup-remotes tbody tr",
                                       rows => rows.map(r => [...r.querySelectorAll("td")].slice(0, 3).map(td => td.textContent)));
    // Dark, as the browser prefers (Cockpit's "auto" style).
    result.darkTheme = await page.evaluate(() => document.documentElement.classList.contains("pf-v5-theme-dark"));
    await shot(page, "dark-theme");
    await pressRowButton(page, `button[aria-label="Restore ${params.existing}"]`);
    await page.waitForSelector("#opbackup-restore-dialog", { timeout: TIMEOUT });
    result.restoreDialog = await text(page, "#opbackup-restore-dialog");
    await shot(page, "restore-confirmation");
    await page.click("#opbackup-skip-plugins");
    await page.evaluate(() => {
        window.__logSeen = 0;
        new MutationObserver(() => {
            const n = document.querySelectorAll(".opbackup-job .opbackup-log span").length;
            window.__logSeen = Math.max(window.__logSeen, n);
        }).observe(document.body, { subtree: true, childList: true });
    });
    await clickButton(page, "#opbackup-restore-dialog", "Restore");
    await page.waitForSelector(`${inst} .opbackup-outcome`, { timeout: 120000 });
    result.outcome = await page.$eval(`${inst} .opbackup-outcome`, e => ({ variant: e.dataset.outcome, text: e.textContent }));
    result.logLinesLive = await page.evaluate(() => window.__logSeen);
    result.logLinesKept = await page.$$eval(`${inst} .opbackup-outcome .opbackup-log span`, s => s.length);
    await shot(page, "restore-done");
}

async function copy(page) {
    const inst = `[data-instance="${params.instance}"]`;
    await page.waitForSelector(`button[aria-label="Copy ${params.existing} to remotes"]`, { timeout: TIMEOUT });
    await pressRowButton(page, `button[aria-label="Copy ${params.existing} to remotes"]`);
    await page.waitForSelector("#opbackup-copy-dialog", { timeout: TIMEOUT });
    result.copyDialog = await text(page, "#opbackup-copy-dialog");
    await page.click(`#remote-${params.remote}`);
    await shot(page, "copy-to-remote");
    await clickButton(page, "#opbackup-copy-dialog", "Copy");
    await page.waitForSelector(`${inst} .opbackup-outcome`, { timeout: 60000 });
    result.outcome = await page.$eval(`${inst} .opbackup-outcome`, e => ({ variant: e.dataset.outcome, text: e.textContent }));
    // The remote's last upload, from the instance's RemoteStatus (read again on BackupUploaded).
    await page.waitForFunction(() => /done/.test(document.querySelector("#opbackup-remotes tbody").textContent),
                               { timeout: TIMEOUT });
    result.remotesText = await text(page, "#opbackup-remotes tbody");
    await shot(page, "copied-to-remote");
}

async function cancel(page) {
    // A backup held in "preparing" by a slow exclude hook: its stage on screen, then Cancel.
    const inst = `[data-instance="${params.instance}"]`;
    await page.waitForSelector(`${inst} .opbackup-status`, { timeout: TIMEOUT });
    await clickButton(page, inst, "Create backup");
    await page.waitForSelector("#opbackup-create-dialog", { timeout: TIMEOUT });
    await clickButton(page, "#opbackup-create-dialog", "Create");
    await page.waitForSelector(`${inst} .opbackup-job[data-job-stage=preparing]`, { timeout: TIMEOUT });
    result.jobText = await text(page, `${inst} .opbackup-job`);
    await shot(page, "backup-preparing");
    await page.click(`${inst} .opbackup-job button`);
    await page.waitForSelector(`${inst} .opbackup-outcome`, { timeout: 30000 });
    result.outcome = await page.$eval(`${inst} .opbackup-outcome`, e => ({ variant: e.dataset.outcome, text: e.textContent }));
    result.jobsLeft = await page.$$eval(`${inst} .opbackup-job`, l => l.length);
    result.rows = await page.$$eval(`${inst} tr[data-backup]`, rows => rows.map(r => r.dataset.backup));
}

async function bench(page) {
    // ms from the start of navigation until the instance and its first page of backups are on screen
    // (the card counts all of them).
    const handle = await page.waitForFunction(want => {
        const card = document.querySelector("[data-instance]");
        const rows = document.querySelectorAll("[data-instance] tr[data-backup]").length;
        return card && card.dataset.backupCount === String(want) && rows > 0 ? performance.now() : false;
    }, { timeout: 60000, polling: "mutation" }, params.count);
    result.listedMs = await handle.jsonValue();
    result.appMs = Number(await page.$eval("#opbackup-main", e => e.dataset.loadedMs));
    result.navigation = await page.evaluate(() => {
        const n = performance.getEntriesByType("navigation")[0];
        return { domContentLoaded: n.domContentLoadedEventEnd, load: n.loadEventEnd };
    });
}

(async () => {
    const args = ["--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=en-US"];
    if (process.getuid() === 0)
        args.push("--no-sandbox");   // chromium's sandbox refuses to run as root
    const browser = await puppeteer.launch({
        executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
        headless: true,
        args,
    });
    let failed = null;
    try {
        const page = await browser.newPage();
        page.on("console", m => result.console.push(m.type() + ": " + m.text()));
        page.on("pageerror", e => result.pageErrors.push(e.message));
        await page.setViewport({ width: 1280, height: 900 });
        if (params.dark)
            await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "dark" }]);
        await page.goto(url, { waitUntil: "load" });
        try {
            await { member, outsider, admin, copy, cancel, bench }[mode](page, browser);
        } catch (e) {
            failed = e.message;
            await shot(page, "failure-" + mode).catch(() => {});
        }
    } finally {
        await browser.close();
    }
    result.error = failed;
    console.log(JSON.stringify(result));
    process.exit(0);
})().catch(e => {
    console.log(JSON.stringify({ mode, error: "browser: " + e.message }));
    process.exit(0);
});
