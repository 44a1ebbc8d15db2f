//! Result statuses of runs and of attempts, and the one precedence rule that
//! turns many of them into one.

use serde::{Deserialize, Serialize};

/// What a run (one step of one flow for one event) ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    /// Nothing to do, a gated step, or a step whose `if:` did not hold.
    Skipped,
    /// Done, nothing changed.
    Completed,
    /// Done, with a new candidate.
    Changed,
    /// A person or an agent must resolve a conflict.
    NeedsIntervention,
    /// A precondition is not met (missing tag or branch, shallow history, permission).
    Blocked,
    /// An error or a failing check.
    Failed,
}

impl ResultStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Skipped => "skipped",
            ResultStatus::Completed => "completed",
            ResultStatus::Changed => "changed",
            ResultStatus::NeedsIntervention => "needs_intervention",
            ResultStatus::Blocked => "blocked",
            ResultStatus::Failed => "failed",
        }
    }

    /// Whether a maintainer must look: the process exits 1 for these.
    pub fn needs_attention(self) -> bool {
        matches!(self, ResultStatus::NeedsIntervention | ResultStatus::Blocked | ResultStatus::Failed)
    }

    /// Changed or completed: what a step without `if:` needs before it.
    pub fn is_success(self) -> bool {
        matches!(self, ResultStatus::Changed | ResultStatus::Completed)
    }

    /// The status of several runs, first rule that matches: any
    /// needs_intervention, any blocked, any failed, any changed, all skipped
    /// → skipped, otherwise completed. None when there are no runs.
    pub fn aggregate(statuses: impl IntoIterator<Item = ResultStatus>) -> Option<ResultStatus> {
        let statuses: Vec<ResultStatus> = statuses.into_iter().collect();
        if statuses.is_empty() {
            return None;
        }
        let order =
            [ResultStatus::NeedsIntervention, ResultStatus::Blocked, ResultStatus::Failed, ResultStatus::Changed];
        if let Some(found) = order.into_iter().find(|status| statuses.contains(status)) {
            return Some(found);
        }
        if statuses.iter().all(|status| *status == ResultStatus::Skipped) {
            return Some(ResultStatus::Skipped);
        }
        Some(ResultStatus::Completed)
    }
}

impl std::fmt::Display for ResultStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ResultStatus::*;
    use super::*;

    #[test]
    fn precedence_table() {
        let cases: &[(&[ResultStatus], Option<ResultStatus>)] = &[
            (&[], None),
            (&[Completed, Skipped], Some(Completed)),
            (&[Skipped, Skipped], Some(Skipped)),
            (&[Completed, Changed], Some(Changed)),
            (&[Changed, Failed], Some(Failed)),
            (&[Failed, Blocked], Some(Blocked)),
            (&[Blocked, NeedsIntervention], Some(NeedsIntervention)),
            (&[Skipped, Changed, Skipped], Some(Changed)),
            (&[Completed], Some(Completed)),
        ];
        for (statuses, want) in cases {
            assert_eq!(ResultStatus::aggregate(statuses.iter().copied()), *want, "{statuses:?}");
        }
    }

    #[test]
    fn serializes_snake_case() {
        assert_eq!(serde_json::to_string(&NeedsIntervention).unwrap(), "\"needs_intervention\"");
        assert_eq!(NeedsIntervention.to_string(), "needs_intervention");
    }
}
