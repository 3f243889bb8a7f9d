//! The climbing-session aggregate's decisions: pure and synchronous, state + command ->
//! events or a domain error (STYLE.md). The state is what the rules need and nothing more; it
//! lives in the aggregate's head (see [`crate::writer`]).

use std::collections::BTreeMap;

use cruxlog_schemas::{
    DomainEvent,
    events::{
        AttemptCorrected, AttemptDeleted, AttemptLogged, Sealed, SessionEnded, SessionStarted,
        VideoAttached, aggregate, sealed::MediaRef,
    },
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    error::ApiError,
    fold::{self, Aggregate, Unfoldable},
    writer::{Decision, NewEvent},
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StoredSession")]
pub struct SessionState {
    pub owner: Uuid,
    pub ended: bool,
    /// Attempt id -> whether it was deleted.
    pub attempts: BTreeMap<Uuid, bool>,
    /// Video id -> what an analysis request needs to name it.
    pub videos: BTreeMap<Uuid, VideoRef>,
}

/// A video as analysis requests name it: the event that attached it, its attempt and where
/// its bytes are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoRef {
    pub event_id: Uuid,
    pub attempt_id: Uuid,
    /// The attaching event's sealed [`MediaRef`], still sealed: the state folds from the log
    /// without the user's key (ADR 0014), and an analysis request copies it as it is.
    pub media: Sealed,
}

impl VideoRef {
    fn attached(event_id: Uuid, event: &VideoAttached) -> Self {
        Self {
            event_id,
            attempt_id: event.attempt_id,
            media: event.media.clone(),
        }
    }
}

impl SessionState {
    fn started(event: &SessionStarted) -> Self {
        Self {
            owner: event.user_id,
            ended: false,
            attempts: BTreeMap::new(),
            videos: BTreeMap::new(),
        }
    }
}

/// A session state as heads store it, also as heads written before videos kept their media
/// sealed stored it: `object_key` and `sha256` open, which are sealed again (as
/// `PLAINTEXT_DEV`, as they were written) under the owner's key id.
#[derive(Deserialize)]
struct StoredSession {
    owner: Uuid,
    ended: bool,
    attempts: BTreeMap<Uuid, bool>,
    videos: BTreeMap<Uuid, StoredVideo>,
}

#[derive(Deserialize)]
struct StoredVideo {
    event_id: Uuid,
    attempt_id: Uuid,
    media: Option<Sealed>,
    object_key: Option<String>,
    sha256: Option<String>,
}

impl TryFrom<StoredSession> for SessionState {
    type Error = String;

    fn try_from(stored: StoredSession) -> Result<Self, Self::Error> {
        let owner = stored.owner;
        let videos = stored
            .videos
            .into_iter()
            .map(|(video_id, video)| {
                let media = match (video.media, video.object_key, video.sha256) {
                    (Some(media), _, _) => media,
                    (None, Some(object_key), Some(sha256)) => {
                        Sealed::dev(format!("user:{owner}"), &MediaRef { object_key, sha256 })
                    }
                    _ => return Err(format!("video {video_id} has no media")),
                };
                Ok((
                    video_id,
                    VideoRef {
                        event_id: video.event_id,
                        attempt_id: video.attempt_id,
                        media,
                    },
                ))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            owner,
            ended: stored.ended,
            attempts: stored.attempts,
            videos,
        })
    }
}

impl Aggregate for SessionState {
    const TYPE: &'static str = aggregate::CLIMBING_SESSION;

    fn evolve(
        state: Option<Self>,
        event_id: Uuid,
        event: &DomainEvent,
    ) -> Result<Self, Unfoldable> {
        if let DomainEvent::SessionStarted(started) = event {
            fold::absent(state.as_ref(), event)?;
            return Ok(Self::started(started));
        }
        let mut state = fold::existing(state, event)?;
        match event {
            DomainEvent::AttemptLogged(logged) => {
                state.attempts.insert(logged.attempt_id, false);
            }
            DomainEvent::AttemptCorrected(_) => {}
            DomainEvent::AttemptDeleted(deleted) => {
                state.attempts.insert(deleted.attempt_id, true);
            }
            DomainEvent::VideoAttached(attached) => {
                state
                    .videos
                    .insert(attached.video_id, VideoRef::attached(event_id, attached));
            }
            DomainEvent::SessionEnded(_) => state.ended = true,
            _ => return Err(Unfoldable::foreign::<Self>(event)),
        }
        Ok(state)
    }
}

/// Checks, before an upload is read, that the attempt can take a video.
pub fn can_attach(
    state: Option<SessionState>,
    user_id: Uuid,
    attempt_id: Uuid,
) -> Result<(), ApiError> {
    live_attempt(&owned(state, user_id)?, attempt_id)
}

/// Sessions of other users look absent (404), never forbidden: ids are not confirmed.
fn owned(state: Option<SessionState>, caller: Uuid) -> Result<SessionState, ApiError> {
    match state {
        Some(state) if state.owner == caller => Ok(state),
        _ => Err(ApiError::NotFound),
    }
}

fn open(state: Option<SessionState>, caller: Uuid) -> Result<SessionState, ApiError> {
    let state = owned(state, caller)?;
    if state.ended {
        return Err(ApiError::Conflict("the session has ended".into()));
    }
    Ok(state)
}

fn live_attempt(state: &SessionState, attempt_id: Uuid) -> Result<(), ApiError> {
    match state.attempts.get(&attempt_id) {
        Some(false) => Ok(()),
        _ => Err(ApiError::NotFound),
    }
}

pub fn start(state: Option<SessionState>, event: &SessionStarted) -> Decision<SessionState> {
    match state {
        // The same command again (a keyed retry re-run): nothing more to append.
        Some(state) if state.owner == event.user_id => Ok((vec![], state)),
        Some(_) => Err(ApiError::Conflict("session id taken".into())),
        None => Ok((
            vec![NewEvent::new(event.clone())],
            SessionState::started(event),
        )),
    }
}

pub fn log_attempt(state: Option<SessionState>, event: &AttemptLogged) -> Decision<SessionState> {
    let mut state = open(state, event.user_id)?;
    if state.attempts.contains_key(&event.attempt_id) {
        return Ok((vec![], state));
    }
    state.attempts.insert(event.attempt_id, false);
    Ok((vec![NewEvent::new(event.clone())], state))
}

pub fn correct_attempt(
    state: Option<SessionState>,
    event: &AttemptCorrected,
) -> Decision<SessionState> {
    let state = owned(state, event.user_id)?;
    live_attempt(&state, event.attempt_id)?;
    Ok((vec![NewEvent::new(event.clone())], state))
}

pub fn delete_attempt(
    state: Option<SessionState>,
    event: &AttemptDeleted,
) -> Decision<SessionState> {
    let mut state = owned(state, event.user_id)?;
    let attempt_id = event.attempt_id;
    match state.attempts.get(&attempt_id) {
        None => return Err(ApiError::NotFound),
        Some(true) => return Ok((vec![], state)),
        Some(false) => {}
    }
    state.attempts.insert(attempt_id, true);
    Ok((vec![NewEvent::new(event.clone())], state))
}

/// Videos may come after the session ended (uploads on the way home), not to a deleted
/// attempt.
pub fn attach_video(state: Option<SessionState>, event: &VideoAttached) -> Decision<SessionState> {
    let mut state = owned(state, event.user_id)?;
    live_attempt(&state, event.attempt_id)?;
    if state.videos.contains_key(&event.video_id) {
        return Ok((vec![], state));
    }
    let new = NewEvent::new(event.clone());
    state
        .videos
        .insert(event.video_id, VideoRef::attached(new.event_id, event));
    Ok((vec![new], state))
}

pub fn end(state: Option<SessionState>, event: &SessionEnded) -> Decision<SessionState> {
    let mut state = owned(state, event.user_id)?;
    if state.ended {
        return Ok((vec![], state));
    }
    state.ended = true;
    Ok((vec![NewEvent::new(event.clone())], state))
}

#[cfg(test)]
mod tests {
    use cruxlog_schemas::events::{Discipline, SessionEndReason};

    use super::*;

    fn attempt_sample() -> AttemptLogged {
        cruxlog_schemas::events::samples::all()
            .into_iter()
            .find_map(|event| match event {
                cruxlog_schemas::DomainEvent::AttemptLogged(event) => Some(event),
                _ => None,
            })
            .expect("sample")
    }

    fn video_sample() -> VideoAttached {
        cruxlog_schemas::events::samples::all()
            .into_iter()
            .find_map(|event| match event {
                cruxlog_schemas::DomainEvent::VideoAttached(event) => Some(event),
                _ => None,
            })
            .expect("sample")
    }

    fn started(owner: Uuid) -> SessionState {
        let event = SessionStarted {
            session_id: Uuid::now_v7(),
            user_id: owner,
            started_at: chrono::Utc::now(),
            discipline: Discipline::Boulder,
            indoor: true,
            location_name: None,
            planned_minutes: None,
        };
        let (events, state) = start(None, &event).expect("starts");
        assert_eq!(events.len(), 1);
        assert_eq!(
            start(Some(state.clone()), &event).expect("again").0.len(),
            0
        );
        state
    }

    fn ended(user_id: Uuid) -> SessionEnded {
        SessionEnded {
            session_id: Uuid::nil(),
            user_id,
            ended_at: chrono::Utc::now(),
            rpe: None,
            notes: None,
            reason: SessionEndReason::Climber,
        }
    }

    #[test]
    fn another_users_session_is_not_found_and_an_ended_one_takes_no_attempts() {
        let owner = Uuid::now_v7();
        let state = started(owner);
        let stranger = ended(Uuid::now_v7());
        assert!(matches!(
            end(Some(state.clone()), &stranger),
            Err(ApiError::NotFound)
        ));
        assert!(matches!(end(None, &ended(owner)), Err(ApiError::NotFound)));
        let (events, closed) = end(Some(state), &ended(owner)).expect("ends");
        assert_eq!(events.len(), 1);
        assert!(closed.ended);
        // Ending twice appends nothing.
        assert!(
            end(Some(closed.clone()), &ended(owner))
                .expect("again")
                .0
                .is_empty()
        );
        let attempt = AttemptLogged {
            user_id: owner,
            ..attempt_sample()
        };
        assert!(matches!(
            log_attempt(Some(closed), &attempt),
            Err(ApiError::Conflict(_))
        ));
    }

    #[test]
    fn attempts_are_logged_once_deleted_once_and_videos_need_a_live_attempt() {
        let owner = Uuid::now_v7();
        let attempt = AttemptLogged {
            user_id: owner,
            ..attempt_sample()
        };
        let (events, state) = log_attempt(Some(started(owner)), &attempt).expect("logs");
        assert_eq!(events.len(), 1);
        let (events, state) = log_attempt(Some(state), &attempt).expect("again");
        assert!(events.is_empty(), "same attempt id twice appends once");

        let video = VideoAttached {
            attempt_id: attempt.attempt_id,
            user_id: owner,
            ..video_sample()
        };
        let (events, with_video) = attach_video(Some(state.clone()), &video).expect("attaches");
        assert_eq!(
            with_video.videos[&video.video_id].event_id,
            events[0].event_id
        );

        let deletion = AttemptDeleted {
            session_id: attempt.session_id,
            attempt_id: attempt.attempt_id,
            user_id: owner,
            reason: cruxlog_schemas::events::AttemptDeletionReason::Mistake,
        };
        let (events, deleted) = delete_attempt(Some(state), &deletion).expect("deletes");
        assert_eq!(events.len(), 1);
        assert!(
            delete_attempt(Some(deleted.clone()), &deletion)
                .expect("again")
                .0
                .is_empty()
        );
        assert!(matches!(
            attach_video(Some(deleted), &video),
            Err(ApiError::NotFound)
        ));
    }
}
