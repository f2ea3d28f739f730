//! The HTTP client: reqwest over rustls with the `ring` provider.
//!
//! reqwest is built with `rustls-no-provider` and handed a ready rustls
//! `ClientConfig` whose provider is `ring` and whose verifier is the
//! platform verifier (the system's roots, plus optional extra PEM roots).
//! Nothing is installed process-wide, so this cannot clash with kube's own
//! rustls set-up in the same binary, and aws-lc-rs is not built at all.

use super::error::TracksolidError;
use super::options::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::net::IpAddr;
use std::sync::Arc;

pub(crate) fn build_tls(
    extra_root_pem: Option<&[u8]>,
) -> Result<rustls::ClientConfig, TracksolidError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = match extra_root_pem {
        None => rustls_platform_verifier::Verifier::new(provider.clone()),
        Some(pem) => {
            let roots = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TracksolidError::Build(format!("extra root certificates: {e}")))?;
            if roots.is_empty() {
                return Err(TracksolidError::Build(
                    "extra root certificates: no certificate in the PEM".into(),
                ));
            }
            rustls_platform_verifier::Verifier::new_with_extra_roots(roots, provider.clone())
        }
    }
    .map_err(|e| TracksolidError::Build(format!("TLS verifier: {e}")))?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TracksolidError::Build(format!("TLS versions: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

pub(crate) fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some(h) => {
            let h = h.trim_start_matches('[').trim_end_matches(']');
            h.eq_ignore_ascii_case("localhost")
                || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        None => false,
    }
}

/// The parsed endpoint and an HTTP client with the configured timeouts.
/// Proxies from the environment are honoured except for loopback endpoints.
pub(crate) fn build(
    cfg: &ClientConfig,
) -> Result<(reqwest::Url, reqwest::Client), TracksolidError> {
    let url = reqwest::Url::parse(cfg.endpoint.trim())
        .map_err(|e| TracksolidError::Build(format!("endpoint URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TracksolidError::Build(format!(
            "endpoint URL: scheme {} is not http or https",
            url.scheme()
        )));
    }
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(build_tls(cfg.extra_root_pem.as_deref())?)
        .connect_timeout(cfg.connect_timeout)
        .timeout(cfg.request_timeout)
        .user_agent(concat!("fleet-workloads/", env!("CARGO_PKG_VERSION")));
    if is_loopback(&url) {
        builder = builder.no_proxy();
    }
    let http = builder
        .build()
        .map_err(|e| TracksolidError::Build(format!("HTTP client: {e}")))?;
    Ok((url, http))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracksolid::options::{Credentials, UserPassword};

    fn cfg(endpoint: &str) -> ClientConfig {
        ClientConfig::new(
            "t",
            endpoint,
            Credentials {
                app_key: "k".into(),
                app_secret: "s".into(),
                user_id: "u".into(),
                password: UserPassword::Plain("p".into()),
            },
        )
    }

    #[test]
    fn builds_a_tls_client_without_a_process_default_provider() {
        assert!(rustls::crypto::CryptoProvider::get_default().is_none());
        let (url, _) = build(&cfg("https://hk-open.tracksolidpro.com/route/rest"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(url.path(), "/route/rest");
        assert!(rustls::crypto::CryptoProvider::get_default().is_none());
    }

    #[test]
    fn rejects_bad_endpoints_and_bad_pem() {
        assert!(matches!(
            build(&cfg("not a url")),
            Err(TracksolidError::Build(_))
        ));
        assert!(matches!(
            build(&cfg("ftp://x/route/rest")),
            Err(TracksolidError::Build(_))
        ));
        let mut c = cfg("https://x/route/rest");
        c.extra_root_pem = Some(b"no pem here".to_vec());
        assert!(matches!(build(&c), Err(TracksolidError::Build(_))));
    }

    #[test]
    fn loopback_detection() {
        let l = |s: &str| {
            reqwest::Url::parse(s)
                .map(|u| is_loopback(&u))
                .unwrap_or(false)
        };
        assert!(l("http://127.0.0.1:8080/route/rest"));
        assert!(l("http://[::1]:8080/route/rest"));
        assert!(l("http://localhost/route/rest"));
        assert!(!l("https://hk-open.tracksolidpro.com/route/rest"));
    }
}
