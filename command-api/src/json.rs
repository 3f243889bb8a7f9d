//! A JSON body extractor whose failures name the offending field (W4): the content type is
//! checked, syntax errors are 400, missing fields and wrong types are 422 with the JSON path.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::header,
};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

pub struct ValidJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ValidJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json")
                    || mime.to_ascii_lowercase().ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType("application/json"));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|_| ApiError::PayloadTooLarge)?;
        parse(&bytes).map(ValidJson)
    }
}

/// Parses a body, mapping serde's errors to problem details.
/// Every command body is a JSON object; serde would otherwise also accept a struct written
/// as an array.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(ApiError::MalformedJson("empty body".into())),
        Some(b'{') => {}
        Some(b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
            return Err(ApiError::invalid("(body)", "must be a JSON object"));
        }
        Some(_) => return Err(ApiError::MalformedJson("not JSON".into())),
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::MalformedJson(inner.to_string());
        }
        let message = inner.to_string();
        // serde names a missing field in the message, at the parent's path.
        let field = match message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            Some(missing) if path == "." => missing.to_owned(),
            Some(missing) => format!("{path}.{missing}"),
            None if path == "." => "(body)".to_owned(),
            None => path,
        };
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_owned();
        ApiError::Validation(vec![FieldError { field, message }])
    })
}

/// A query-string extractor whose failures are problem details (422 naming the parameter
/// serde complained about) instead of axum's plain-text 400.
pub struct ValidQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for ValidQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ValidQuery)
            .map_err(|error| {
                let path = error.path().to_string();
                let field = if path == "." {
                    "(query)".to_owned()
                } else {
                    path
                };
                ApiError::invalid(field, error.into_inner().to_string())
            })
    }
}

/// A schema enum from its lower-case name (`top_rope` -> `TOP_ROPE`), `None` when unknown.
pub fn symbol<T: DeserializeOwned>(text: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(text.to_ascii_uppercase())).ok()
}

/// A page size from `?limit=`: `default` when absent, 422 naming `limit` outside 1..=`max`.
pub fn page_limit(limit: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {max}"),
        ));
    }
    Ok(limit)
}

/// A path id: anything that is not a UUID names nothing (404, like an id that is not yours).
pub fn path_id(text: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(text).map_err(|_| ApiError::NotFound)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        indoor: bool,
        planned_minutes: Option<i32>,
    }

    fn field_of(body: &str) -> String {
        match parse::<Body>(body.as_bytes()) {
            Err(ApiError::Validation(errors)) => errors[0].field.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field_of(r#"{"planned_minutes": 3}"#), "indoor");
        assert_eq!(field_of(r#"{"indoor": "yes"}"#), "indoor");
        assert_eq!(
            field_of(r#"{"indoor": true, "planned_minutes": 1.5}"#),
            "planned_minutes"
        );
        assert!(matches!(
            parse::<Body>(b"{\"indoor\": tru"),
            Err(ApiError::MalformedJson(_))
        ));
        assert!(matches!(
            parse::<Body>(b""),
            Err(ApiError::MalformedJson(_))
        ));
    }
}
