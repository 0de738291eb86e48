//! `unit_status`, `restart` and `daemon_logs`: the daemon and its systemd unit.

use fazt_proto::{RestartTicket, RpcError, UnitStatus};

use crate::systemd::dbus;
use crate::systemd::own_unit::{OwnUnit, OwnUnitError};

fn wire_status(s: crate::systemd::own_unit::UnitState) -> UnitStatus {
    UnitStatus {
        unit: s.unit,
        scope: s.scope.as_str().to_string(),
        load_state: s.load_state,
        active_state: s.active_state,
        sub_state: s.sub_state,
        unit_file_state: s.unit_file_state,
        active_since_usec: s.active_since_usec,
        restarts: s.restarts,
        main_pid: s.main_pid,
    }
}

pub async fn unit_status() -> Result<Option<UnitStatus>, RpcError> {
    let own = match OwnUnit::find().await {
        Ok(own) => own,
        Err(OwnUnitError::NotUnderSystemd) => return Ok(None),
        Err(err) => return Err(RpcError::Failed(err.to_string())),
    };
    own.status()
        .await
        .map(|s| Some(wire_status(s)))
        .map_err(|err| {
            RpcError::Failed(format!(
                "cannot read the unit's state from systemd: {}",
                dbus::describe(&err)
            ))
        })
}

pub async fn restart() -> Result<RestartTicket, RpcError> {
    let own = OwnUnit::find()
        .await
        .map_err(|err| RpcError::Invalid(err.to_string()))?;
    match own.restart().await {
        Ok(job) => {
            tracing::info!(unit = %job.unit, job = %job.job, "restart requested: systemd will stop and start this daemon");
            Ok(RestartTicket {
                unit: job.unit,
                scope: job.scope.as_str().to_string(),
                old_pid: job.old_pid,
                job: job.job,
            })
        }
        Err(err) if dbus::is_access_denied(&err) => Err(RpcError::Failed(format!(
            "systemd refused to let faztd restart its own unit ({}); restart it as an administrator: `sudo systemctl{} restart faztd`",
            dbus::describe(&err),
            own.scope.ctl_flag()
        ))),
        Err(err) => Err(RpcError::Failed(format!(
            "systemd could not restart the unit: {}",
            dbus::describe(&err)
        ))),
    }
}

pub async fn daemon_logs(max: u32) -> Result<Vec<String>, RpcError> {
    Ok(crate::logging::recent(max as usize))
}
