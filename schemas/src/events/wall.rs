//! Gyms, walls and routes: the `gym`, `wall` and `route` aggregates, plus the holds the hold
//! analyzer finds (its result, `HoldsDetected`, lives in [`super::analysis`]). Gym and route
//! data is not personal; only media references of uploads are sealed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{BoundingBox, HoldColour, Point, Sealed, aggregate, events_of};
use crate::grades::Grade;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GymRegistered {
    pub gym_id: Uuid,
    pub name: String,
    pub city: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country_code: Option<String>,
    /// WGS 84 degrees.
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// IANA time zone.
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WallKind {
    Boulder,
    Lead,
    TopRope,
    Board,
    SprayWall,
    Training,
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WallRegistered {
    pub wall_id: Uuid,
    pub gym_id: Uuid,
    pub name: String,
    pub kind: WallKind,
    /// Degrees from vertical: positive overhanging, negative slab.
    pub angle_degrees: Option<f64>,
    pub height_m: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WallPhotoUploaded {
    pub wall_id: Uuid,
    pub photo_id: Uuid,
    /// Whose key seals `media`.
    pub uploaded_by: Uuid,
    /// Sealed [`super::sealed::MediaRef`].
    pub media: Sealed,
    /// Upright image (EXIF orientation applied).
    pub width_px: i32,
    pub height_px: i32,
    pub content_type: String,
    pub size_bytes: i64,
    #[serde(with = "chrono::serde::ts_microseconds_option", default)]
    pub taken_at: Option<DateTime<Utc>>,
}

/// `cruxlog.wall.HoldKind`: the analyzer's guess of a hold's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HoldKind {
    Jug,
    Crimp,
    Edge,
    Sloper,
    Pinch,
    Pocket,
    Volume,
    Foothold,
    Unknown,
}

/// `cruxlog.wall.Rgb`, sRGB 0..255.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rgb {
    pub r: i32,
    pub g: i32,
    pub b: i32,
}

/// `cruxlog.wall.DetectedHold`; coordinates are normalized (0..1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectedHold {
    /// Unique within one detection; routes refer to holds by it.
    pub hold_id: String,
    pub polygon: Vec<Point>,
    pub bbox: BoundingBox,
    pub center: Point,
    /// Fraction of the image area.
    pub area: f64,
    pub colour: HoldColour,
    pub rgb: Rgb,
    pub kind: HoldKind,
    /// 0..1.
    pub confidence: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HoldRole {
    Start,
    Hand,
    Foot,
    /// Hands and feet.
    Any,
    Finish,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteHold {
    pub hold_id: String,
    pub role: HoldRole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RouteStyle {
    Crimps,
    Slopers,
    Pinches,
    Pockets,
    Jugs,
    Volumes,
    Dynamic,
    Coordination,
    Technical,
    Powerful,
    Endurance,
    Slab,
    Vertical,
    Overhang,
    Roof,
    Compression,
    Traverse,
    Other,
}

/// Defines or redefines (same `route_id`) a route; proposed until [`RouteConfirmed`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteDefined {
    pub route_id: Uuid,
    pub wall_id: Uuid,
    pub gym_id: Uuid,
    pub name: Option<String>,
    /// The `HoldsDetected` whose hold ids `holds` uses.
    pub holds_analysis_id: Option<Uuid>,
    pub photo_id: Option<Uuid>,
    pub holds: Vec<RouteHold>,
    pub colour: HoldColour,
    pub grade: Grade,
    pub style_tags: Vec<RouteStyle>,
    /// Degrees from vertical, positive overhanging.
    pub wall_angle_degrees: f64,
    #[serde(with = "chrono::serde::ts_microseconds_option", default)]
    pub set_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteConfirmed {
    pub route_id: Uuid,
    pub wall_id: Uuid,
    pub grade: Grade,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RetireReason {
    Reset,
    Duplicate,
    Mistake,
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteRetired {
    pub route_id: Uuid,
    pub wall_id: Uuid,
    pub reason: RetireReason,
}

events_of!(aggregate::GYM, "cruxlog.gym": GymRegistered);
events_of!(aggregate::WALL, "cruxlog.wall": WallRegistered, WallPhotoUploaded);
events_of!(aggregate::ROUTE, "cruxlog.route": RouteDefined, RouteConfirmed, RouteRetired);
