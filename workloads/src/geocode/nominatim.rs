//! A Nominatim-compatible reverse geocoder over HTTP:
//! `GET <base>/reverse?format=jsonv2&lat=<lat>&lon=<lng>` with an identifying
//! `User-Agent` (Nominatim's usage policy requires one).
//!
//! Answers: `{"display_name": "…", …}` is an address; `{"error": "Unable to
//! geocode"}` (HTTP 200) means no address there; any other `error`, a non-2xx
//! status or a body that is not JSON is a failure.

use super::{CacheKey, GeocodeError, ReverseGeocoder};
use serde::Deserialize;
use std::time::Duration;

/// The default `User-Agent`; deployments should name themselves
/// (`--geocoder-user-agent`).
pub const DEFAULT_USER_AGENT: &str = concat!(
    "FleetPipeline/",
    env!("CARGO_PKG_VERSION"),
    " (fleet-ingest trips)"
);

#[derive(Clone, Debug, PartialEq)]
pub struct NominatimOptions {
    /// Base URL of the service, e.g. `http://nominatim.geo.svc:8080`
    /// (`/reverse` is appended).
    pub base_url: String,
    pub user_agent: String,
    /// Whole-request timeout.
    pub timeout: Duration,
}

impl NominatimOptions {
    pub fn new(base_url: impl Into<String>) -> NominatimOptions {
        NominatimOptions {
            base_url: base_url.into(),
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The client. Requests are sent one at a time by [`super::resolve`].
pub struct Nominatim {
    reverse_url: reqwest::Url,
    http: reqwest::Client,
}

/// `<base>/reverse`, keeping any path prefix of the base
/// (`https://host/nominatim` → `https://host/nominatim/reverse`).
pub fn reverse_url(base: &str) -> Result<reqwest::Url, GeocodeError> {
    let mut url = reqwest::Url::parse(base.trim())
        .map_err(|e| GeocodeError::Build(format!("geocoding URL {base:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(GeocodeError::Build(format!(
            "geocoding URL {base:?} is not an http(s) URL with a host"
        )));
    }
    let path = format!("{}/reverse", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Reads a 2xx body.
pub fn parse_answer(body: &[u8]) -> Result<Option<String>, GeocodeError> {
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| GeocodeError::Decode(e.to_string()))?;
    if let Some(error) = answer.error {
        let text = match &error {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Object(o) => o
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or_default()
                .to_owned(),
            other => other.to_string(),
        };
        if text.eq_ignore_ascii_case("Unable to geocode") {
            return Ok(None);
        }
        return Err(GeocodeError::Service(text));
    }
    Ok(answer
        .display_name
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty()))
}

impl Nominatim {
    pub fn new(opts: &NominatimOptions) -> Result<Nominatim, GeocodeError> {
        let reverse_url = reverse_url(&opts.base_url)?;
        let tls =
            crate::tracksolid::tls_config(None).map_err(|e| GeocodeError::Build(e.to_string()))?;
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(opts.timeout.min(Duration::from_secs(10)))
            .timeout(opts.timeout)
            .user_agent(opts.user_agent.clone());
        if crate::tracksolid::is_loopback_url(&reverse_url) {
            builder = builder.no_proxy();
        }
        let http = builder
            .build()
            .map_err(|e| GeocodeError::Build(e.to_string()))?;
        Ok(Nominatim { reverse_url, http })
    }

    /// The request URL for a point.
    pub fn url_for(&self, at: CacheKey) -> reqwest::Url {
        let mut url = self.reverse_url.clone();
        url.query_pairs_mut()
            .append_pair("format", "jsonv2")
            .append_pair("lat", &at.lat_param())
            .append_pair("lon", &at.lng_param());
        url
    }
}

impl ReverseGeocoder for Nominatim {
    async fn reverse(&self, at: CacheKey) -> Result<Option<String>, GeocodeError> {
        let response = self
            .http
            .get(self.url_for(at))
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| GeocodeError::Transport(error_chain(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(GeocodeError::HttpStatus(status.as_u16()));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| GeocodeError::Transport(error_chain(&e)))?;
        parse_answer(&body)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_url_keeps_a_path_prefix() {
        let u = |s: &str| reverse_url(s).map(|u| u.to_string());
        assert_eq!(
            u("http://nominatim.geo.svc:8080").unwrap(),
            "http://nominatim.geo.svc:8080/reverse"
        );
        assert_eq!(
            u("https://geo.example/nominatim/").unwrap(),
            "https://geo.example/nominatim/reverse"
        );
        assert_eq!(
            u("http://127.0.0.1:9/x?y=1#z").unwrap(),
            "http://127.0.0.1:9/x/reverse"
        );
        assert!(u("ftp://geo.example").is_err());
        assert!(u("not a url").is_err());
    }

    #[test]
    fn request_names_the_rounded_point() {
        let n = Nominatim::new(&NominatimOptions::new("http://127.0.0.1:8080")).unwrap();
        let at = CacheKey::from_degrees(-1.292_064_9, 36.821_945_1).unwrap();
        assert_eq!(
            n.url_for(at).as_str(),
            "http://127.0.0.1:8080/reverse?format=jsonv2&lat=-1.29206&lon=36.82195"
        );
    }

    #[test]
    fn answers() {
        assert_eq!(
            parse_answer(br#"{"place_id":1,"lat":"-1.29","lon":"36.82","display_name":" Kenyatta Avenue, Nairobi ","address":{}}"#).unwrap(),
            Some("Kenyatta Avenue, Nairobi".to_owned())
        );
        assert_eq!(
            parse_answer(br#"{"error":"Unable to geocode"}"#).unwrap(),
            None
        );
        assert_eq!(parse_answer(br#"{"display_name":""}"#).unwrap(), None);
        assert!(matches!(
            parse_answer(br#"{"error":{"code":400,"message":"Parameter 'lon' missing."}}"#),
            Err(GeocodeError::Service(m)) if m.contains("lon")
        ));
        assert!(matches!(
            parse_answer(b"<html>busy</html>"),
            Err(GeocodeError::Decode(_))
        ));
    }
}
