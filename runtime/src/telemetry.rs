//! Logs: JSON lines in production (or when `CRUXLOG_LOG_FORMAT=json`), pretty in a
//! terminal; the filter comes from `RUST_LOG` (default `info`). W3C trace context helpers
//! live here so every service names traces the same way.

use std::io::IsTerminal as _;

use rand::Rng as _;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global subscriber once; later calls are no-ops (tests call it freely).
pub fn init(service: &'static str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match std::env::var("CRUXLOG_LOG_FORMAT") {
        Ok(format) => format == "json",
        Err(_) => !std::io::stderr().is_terminal(),
    };
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init()
    };
    if result.is_ok() {
        tracing::debug!(service, "telemetry initialised");
    }
}

/// Quiet in tests unless `TEST_LOG=1`.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        init("test");
    }
}

/// A W3C `traceparent` (version 00, sampled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: String,
    pub span_id: String,
}

impl TraceParent {
    /// A new trace, for a request that arrived without one.
    pub fn new_root() -> Self {
        let mut rng = rand::rng();
        Self {
            trace_id: format!("{:032x}", rng.random::<u128>() | 1),
            span_id: new_span_id(),
        }
    }

    /// Parses `00-<32 hex>-<16 hex>-<2 hex>`; anything else is ignored, as the spec asks.
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace_id, span_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        let valid = version == "00"
            && hex(trace_id, 32)
            && hex(span_id, 16)
            && hex(flags, 2)
            && trace_id.bytes().any(|b| b != b'0')
            && parts.next().is_none();
        valid.then(|| Self {
            trace_id: trace_id.to_ascii_lowercase(),
            span_id: span_id.to_ascii_lowercase(),
        })
    }

    /// The same trace, one span further down (a message handler, a worker call).
    pub fn child(&self) -> Self {
        Self {
            trace_id: self.trace_id.clone(),
            span_id: new_span_id(),
        }
    }

    pub fn header(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }
}

fn new_span_id() -> String {
    format!("{:016x}", rand::rng().random::<u64>() | 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_rejects_malformed_headers() {
        let root = TraceParent::new_root();
        assert_eq!(TraceParent::parse(&root.header()), Some(root.clone()));
        assert_eq!(root.child().trace_id, root.trace_id);
        for bad in [
            "",
            "00-abc-def-01",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
    }
}
