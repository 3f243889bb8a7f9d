//! Samples of the `gym`, `wall` and `route` aggregates.

use super::{GYM, HOLDS_ANALYSIS, PHOTO, ROUTE, USER, WALL, at, grade, id, media};
use crate::{
    events::{
        DomainEvent, GymRegistered, HoldColour, HoldRole, RetireReason, RouteConfirmed,
        RouteDefined, RouteHold, RouteRetired, RouteStyle, WallKind, WallPhotoUploaded,
        WallRegistered,
    },
    grades::GradeSystem,
};

pub(super) fn samples() -> Vec<DomainEvent> {
    vec![
        DomainEvent::GymRegistered(GymRegistered {
            gym_id: id(GYM),
            name: "Arkose Nation".into(),
            city: Some("Paris".into()),
            country_code: Some("FR".into()),
            latitude: Some(48.8487),
            longitude: Some(2.3955),
            timezone: Some("Europe/Paris".into()),
        }),
        DomainEvent::WallRegistered(WallRegistered {
            wall_id: id(WALL),
            gym_id: id(GYM),
            name: "The Cave".into(),
            kind: WallKind::Boulder,
            angle_degrees: Some(35.0),
            height_m: Some(4.5),
        }),
        DomainEvent::WallPhotoUploaded(WallPhotoUploaded {
            wall_id: id(WALL),
            photo_id: id(PHOTO),
            uploaded_by: id(USER),
            media: media("walls/0196/cave.jpg", 'a'),
            width_px: 4032,
            height_px: 3024,
            content_type: "image/jpeg".into(),
            size_bytes: 3_481_204,
            taken_at: Some(at(-30)),
        }),
        DomainEvent::RouteDefined(RouteDefined {
            route_id: id(ROUTE),
            wall_id: id(WALL),
            gym_id: id(GYM),
            name: Some("Pink cave traverse".into()),
            holds_analysis_id: Some(id(HOLDS_ANALYSIS)),
            photo_id: Some(id(PHOTO)),
            holds: vec![
                route_hold("h3", HoldRole::Start),
                route_hold("h7", HoldRole::Hand),
                route_hold("h9", HoldRole::Foot),
                route_hold("h12", HoldRole::Finish),
            ],
            colour: HoldColour::Pink,
            grade: grade(GradeSystem::Fontainebleau, "6C"),
            style_tags: vec![RouteStyle::Overhang, RouteStyle::Pinches],
            wall_angle_degrees: 35.0,
            set_at: Some(at(-60 * 24 * 3)),
        }),
        DomainEvent::RouteConfirmed(RouteConfirmed {
            route_id: id(ROUTE),
            wall_id: id(WALL),
            grade: grade(GradeSystem::Fontainebleau, "6C+"),
        }),
        DomainEvent::RouteRetired(RouteRetired {
            route_id: id(ROUTE),
            wall_id: id(WALL),
            reason: RetireReason::Reset,
        }),
    ]
}

fn route_hold(hold_id: &str, role: HoldRole) -> RouteHold {
    RouteHold {
        hold_id: hold_id.into(),
        role,
    }
}
