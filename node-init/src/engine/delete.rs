//! `Engine::delete`: a signed request moves an active deployment to `deleting`; the worker
//! removes its workloads and leaves a tombstone.

use super::{Engine, EngineError};
use crate::blueprint::{BlueprintError, check_delete};
use crate::keys::parse_public;
use bus::api::node::{DeleteRequest, DeploymentState, DeploymentView};

impl Engine {
    /// Accepts a signed delete. Returns once it is durably recorded.
    pub async fn delete(&self, req: DeleteRequest) -> Result<DeploymentView, EngineError> {
        if self.is_poisoned() {
            return Err(EngineError::Poisoned);
        }
        parse_public(&req.owner).map_err(BlueprintError::from)?;
        if req.owner.bytes().any(|b| b.is_ascii_uppercase()) || !super::view::valid_id(&req.id) {
            return Err(EngineError::NotFound(req.id));
        }
        let _guard = self.inner.lock.lock().await;
        let mut rec = self
            .inner
            .store
            .load(&req.owner, &req.id)?
            .ok_or_else(|| EngineError::NotFound(req.id.clone()))?;
        match (rec.state, &rec.deployment) {
            (DeploymentState::Active, Some(current)) => check_delete(current, &req)?,
            _ => return Ok(super::view::view_of(&rec)),
        }
        rec.state = DeploymentState::Deleting;
        rec.log(None, "delete accepted", "");
        self.save(&rec)?;
        tracing::info!(owner = %rec.owner, id = %rec.id, "deployment delete accepted");
        self.publish(&rec, None, "delete accepted");
        self.enqueue((rec.owner.clone(), rec.id.clone()));
        Ok(super::view::view_of(&rec))
    }
}
