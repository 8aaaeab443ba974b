/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The daemon's own D-Bus errors, described in org.opbackup.backup1(5), ERRORS, and in the <doc:errors> of
 * dbus/org.opbackup.backup1.xml (test-introspection checks that both have each of them). */
#define BUS_ERROR_NO_SUCH_INSTANCE "org.opbackup.backup1.Error.NoSuchInstance"
#define BUS_ERROR_NO_SUCH_BACKUP "org.opbackup.backup1.Error.NoSuchBackup"
#define BUS_ERROR_NO_SUCH_JOB "org.opbackup.backup1.Error.NoSuchJob"
#define BUS_ERROR_BUSY "org.opbackup.backup1.Error.Busy"
#define BUS_ERROR_INVALID_BACKUP "org.opbackup.backup1.Error.InvalidBackup"
#define BUS_ERROR_INCOMPATIBLE_VERSION "org.opbackup.backup1.Error.IncompatibleVersion"
#define BUS_ERROR_NOT_ENOUGH_SPACE "org.opbackup.backup1.Error.NotEnoughSpace"
#define BUS_ERROR_RESTORE_UNSUPPORTED "org.opbackup.backup1.Error.RestoreUnsupported"
#define BUS_ERROR_INSTANCE_UNUSABLE "org.opbackup.backup1.Error.InstanceUnusable"
#define BUS_ERROR_NO_SUCH_REMOTE "org.opbackup.backup1.Error.NoSuchRemote"
#define BUS_ERROR_REMOTE_FAILED "org.opbackup.backup1.Error.RemoteFailed"
