//! The Tracksolid client against the protocol simulator, in process, over
//! loopback. Each test starts its own simulator on an ephemeral port and
//! asserts exact request counts on both sides.

use fleet_workloads::tracksolid::request::{Caller, signed_form};
use fleet_workloads::tracksolid::{
    AccType, ApiCode, CachedToken, ClientConfig, Credentials, ErrorClass, MemoryTokenStore, Params,
    RejectKind, RetryPolicy, TokenStore, TracksolidClient, TracksolidError, TransientCause,
    UserPassword, methods,
};
use jiff::Timestamp;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tracksolid_sim::fleet::TrackOptions;
use tracksolid_sim::{AccountConfig, FaultsPatch, SimConfig, SimServer};

const DAY: i64 = 86_400;

async fn start_sim(devices: usize, tweak: impl FnOnce(&mut SimConfig)) -> SimServer {
    let mut cfg = SimConfig::for_tests(devices, 7);
    tweak(&mut cfg);
    SimServer::start(cfg).await.expect("simulator starts")
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        rate_limit_base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        jitter: 0.5,
    }
}

fn config_for(sim: &SimServer, account: &AccountConfig) -> ClientConfig {
    let mut cfg = ClientConfig::new(
        "target-a",
        sim.endpoint(),
        Credentials {
            app_key: account.app_key.clone(),
            app_secret: account.app_secret.clone(),
            user_id: account.user_id.clone(),
            password: UserPassword::Plain(account.password.clone()),
        },
    );
    cfg.retry = fast_retry();
    cfg.request_timeout = Duration::from_secs(20);
    cfg
}

fn client(sim: &SimServer) -> TracksolidClient<Arc<MemoryTokenStore>> {
    client_with(sim, |_| {})
}

fn client_with(
    sim: &SimServer,
    tweak: impl FnOnce(&mut ClientConfig),
) -> TracksolidClient<Arc<MemoryTokenStore>> {
    let mut cfg = config_for(sim, &sim.state().accounts()[0]);
    tweak(&mut cfg);
    TracksolidClient::new(cfg, Arc::new(MemoryTokenStore::new())).expect("client builds")
}

fn imeis(sim: &SimServer, account: usize) -> Vec<String> {
    sim.state()
        .account_fleet(account)
        .expect("account")
        .devices
        .iter()
        .map(|d| d.imei.clone())
        .collect()
}

fn now_s() -> i64 {
    Timestamp::now().as_second()
}

fn ts(s: i64) -> Timestamp {
    Timestamp::from_second(s).expect("valid time")
}

/// A window of `days` days ending two days ago (so nothing in it is still
/// moving: the ground truth does not depend on the exact "now").
fn past_window(days: i64) -> (i64, i64) {
    let e = now_s() - 2 * DAY;
    (e - days * DAY, e)
}

fn secs(t: Option<Timestamp>) -> i64 {
    t.map(|t| t.as_second()).unwrap_or(i64::MIN)
}

#[tokio::test]
async fn login_once_and_every_method_matches_the_fleet() {
    let sim = start_sim(5, |_| {}).await;
    let c = client(&sim);
    let all = imeis(&sim, 0);
    let fleet = &sim.state().fleet;
    let devs = &sim.state().account_fleet(0).expect("account").devices;

    let devices = c.device_list().await.expect("device list");
    assert_eq!(
        devices.iter().map(|d| d.imei.clone()).collect::<Vec<_>>(),
        all
    );
    assert!(
        devices
            .iter()
            .all(|d| d.enabled_flag == Some(1) && d.mc_type.is_some())
    );

    let latest = c.location_list().await.expect("location list");
    assert_eq!(latest.len(), 5);
    assert!(
        latest
            .iter()
            .all(|l| l.has_fix() && l.gps_time.is_some() && l.status == Some(true))
    );
    let by_get = c.locations(&all).await.expect("location.get");
    assert_eq!(
        by_get.iter().map(|l| l.imei.clone()).collect::<Vec<_>>(),
        all
    );

    let (b, e) = past_window(1);
    let now = now_s();
    let dev = &devs[1];
    let track = c.track(&dev.imei, ts(b), ts(e)).await.expect("track");
    let truth = fleet.track(dev, b, e, now, TrackOptions::default());
    assert!(!truth.is_empty());
    assert_eq!(
        track
            .points
            .iter()
            .map(|p| secs(p.gps_time))
            .collect::<Vec<_>>(),
        truth.iter().map(|p| p.t).collect::<Vec<_>>()
    );
    assert!(track.mileage.is_some_and(|m| m > 0.0));

    let scan = c.alarms(&all, ts(b), ts(e)).await.expect("alarms");
    let want: BTreeSet<(String, String, i64)> = devs
        .iter()
        .flat_map(|d| {
            fleet
                .alarms(d, b, e, now)
                .into_iter()
                .map(|a| (d.imei.clone(), a.type_id.to_owned(), a.t))
        })
        .collect();
    let got: BTreeSet<(String, String, i64)> = scan
        .alarms
        .iter()
        .map(|a| (a.imei.clone(), a.alert_type_id.clone(), secs(a.alert_time)))
        .collect();
    assert_eq!(got.len(), scan.alarms.len(), "no duplicates");
    assert_eq!(got, want);
    assert!(scan.truncated.is_empty());

    for (acc, idling) in [(AccType::Parking, false), (AccType::Idling, true)] {
        let rows = c.parking(&all, ts(b), ts(e), acc).await.expect("parking");
        let want: BTreeSet<(String, i64, i64)> = devs
            .iter()
            .flat_map(|d| {
                fleet
                    .stops(d, b, e, now)
                    .into_iter()
                    .filter(|s| s.idling == idling)
                    .map(|s| (d.imei.clone(), s.start, s.end))
            })
            .collect();
        let got: BTreeSet<(String, i64, i64)> = rows
            .iter()
            .map(|r| (r.imei.clone(), secs(r.start_time), secs(r.end_time)))
            .collect();
        assert_eq!(got, want, "{acc:?}");
        assert!(
            rows.iter()
                .all(|r| r.acc.as_deref() == Some(acc.as_param()))
        );
    }

    let trips = c.trips(&all, ts(b), ts(e)).await.expect("trips");
    let want: Vec<(String, i64, i64)> = {
        let mut v: Vec<_> = devs
            .iter()
            .flat_map(|d| {
                fleet
                    .trips(d, b, e, now)
                    .into_iter()
                    .map(|t| (d.imei.clone(), t.start, t.distance_m as i64))
            })
            .collect();
        v.sort();
        v
    };
    let mut got: Vec<(String, i64, i64)> = trips
        .trips
        .iter()
        .map(|t| {
            (
                t.imei.clone(),
                secs(t.start_time),
                t.distance_m.unwrap_or(-1.0) as i64,
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, want);
    assert!(
        trips
            .trips
            .iter()
            .all(|t| t.run_time_second.is_some_and(|s| s >= 60))
    );
    for total in &trips.totals {
        let sum: i64 = want.iter().filter(|w| w.0 == total.imei).map(|w| w.2).sum();
        assert_eq!(total.total_mileage_m, Some(sum as f64));
    }

    // One login for all of that, and the token is in the store.
    assert_eq!(c.stats().logins, 1);
    assert_eq!(sim.state().stats().logins, 1);
    assert_eq!(c.stats().retries, 0);
    assert!(c.store().peek("target-a").is_some());

    // A second client on the same store reuses the token.
    let c2 = TracksolidClient::new(c.config().clone(), c.store().clone()).expect("client");
    c2.device_list().await.expect("device list");
    assert_eq!(c2.stats().logins, 0);
    assert_eq!(sim.state().stats().logins, 1);
}

#[tokio::test]
async fn two_hundred_fifty_devices_go_in_three_batches() {
    let sim = start_sim(250, |_| {}).await;
    let c = client(&sim);
    let all = imeis(&sim, 0);
    let got = c.locations(&all).await.expect("locations");
    assert_eq!(got.len(), 250);
    assert_eq!(
        got.iter()
            .map(|l| l.imei.clone())
            .collect::<HashSet<_>>()
            .len(),
        250
    );
    let stats = sim.state().stats();
    assert_eq!(stats.method(methods::DEVICE_LOCATION_GET), 3);
    assert_eq!(stats.method(methods::TOKEN_GET), 1);
    assert_eq!(c.stats().requests, 4);
}

#[tokio::test]
async fn alarm_pages_are_followed_to_the_short_page() {
    let sim = start_sim(30, |_| {}).await;
    let c = client_with(&sim, |cfg| cfg.protocol.alarm_page_size = 20);
    let all = imeis(&sim, 0);
    let (b, e) = past_window(2);
    let now = now_s();
    let fleet = &sim.state().fleet;
    let total: usize = sim
        .state()
        .account_fleet(0)
        .expect("account")
        .devices
        .iter()
        .map(|d| fleet.alarms(d, b, e, now).len())
        .sum();
    assert!(total > 40 && total < 1000, "{total}");
    let scan = c.alarms(&all, ts(b), ts(e)).await.expect("alarms");
    assert_eq!(scan.alarms.len(), total);
    // Full pages, then one short (possibly empty) page.
    assert_eq!(
        sim.state().stats().method(methods::DEVICE_ALARM_LIST) as usize,
        total / 20 + 1
    );
}

#[tokio::test]
async fn an_alarm_window_at_the_row_cap_is_split() {
    let sim = start_sim(100, |_| {}).await;
    let c = client(&sim);
    let all = imeis(&sim, 0);
    let (b, e) = past_window(3);
    let now = now_s();
    let fleet = &sim.state().fleet;
    let devs = &sim.state().account_fleet(0).expect("account").devices;
    let want: BTreeSet<(String, String, i64)> = devs
        .iter()
        .flat_map(|d| {
            fleet
                .alarms(d, b, e, now)
                .into_iter()
                .map(|a| (d.imei.clone(), a.type_id.to_owned(), a.t))
        })
        .collect();
    assert!(want.len() > 1000, "{}", want.len());
    let scan = c.alarms(&all, ts(b), ts(e)).await.expect("alarms");
    let got: BTreeSet<(String, String, i64)> = scan
        .alarms
        .iter()
        .map(|a| (a.imei.clone(), a.alert_type_id.clone(), secs(a.alert_time)))
        .collect();
    assert_eq!(got, want);
    assert_eq!(scan.alarms.len(), want.len());
    assert!(scan.truncated.is_empty());
}

#[tokio::test]
async fn parking_and_trip_pages() {
    let sim = start_sim(10, |_| {}).await;
    let c = client_with(&sim, |cfg| {
        cfg.protocol.parking_page_size = 5;
        cfg.protocol.mileage_page_size = 5;
    });
    let all = imeis(&sim, 0);
    let (b, e) = past_window(1);
    let now = now_s();
    let fleet = &sim.state().fleet;
    let devs = &sim.state().account_fleet(0).expect("account").devices;
    let stops: usize = devs
        .iter()
        .map(|d| {
            fleet
                .stops(d, b, e, now)
                .iter()
                .filter(|s| !s.idling)
                .count()
        })
        .sum();
    let trips: usize = devs.iter().map(|d| fleet.trips(d, b, e, now).len()).sum();
    assert!(stops > 5 && trips > 5);

    let rows = c
        .parking(&all, ts(b), ts(e), AccType::Parking)
        .await
        .expect("parking");
    assert_eq!(rows.len(), stops);
    // Paged by dataTotalRows: exactly ceil(stops / 5) calls.
    assert_eq!(
        sim.state().stats().method(methods::REPORT_PARKING) as usize,
        stops.div_ceil(5)
    );

    let t = c.trips(&all, ts(b), ts(e)).await.expect("trips");
    assert_eq!(t.trips.len(), trips);
    assert_eq!(t.totals.len(), 10);
    // No total count in this answer: pages until a short one.
    assert_eq!(
        sim.state().stats().method(methods::DEVICE_TRACK_MILEAGE) as usize,
        trips / 5 + 1
    );
}

#[tokio::test]
async fn a_wrong_secret_is_a_signature_error_and_not_retried() {
    let sim = start_sim(3, |_| {}).await;
    let c = client_with(&sim, |cfg| {
        cfg.credentials.app_secret = "not-the-secret".into()
    });
    let err = c.device_list().await.expect_err("must fail");
    match &err {
        TracksolidError::Rejected {
            method, code, kind, ..
        } => {
            assert_eq!(method, methods::TOKEN_GET);
            assert_eq!(*code, ApiCode::Num(1001));
            assert_eq!(*kind, RejectKind::Signature);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.class(), ErrorClass::Permanent);
    let stats = sim.state().stats();
    assert_eq!(stats.requests, 1);
    assert_eq!(stats.outcome("1001"), 1);
    assert_eq!(c.stats().logins, 0);
    assert_eq!(c.stats().retries, 0);
}

#[tokio::test]
async fn a_wrong_password_is_a_credentials_error() {
    let sim = start_sim(3, |_| {}).await;
    let c = client_with(&sim, |cfg| {
        cfg.credentials.password = UserPassword::Plain("wrong".into())
    });
    let err = c.location_list().await.expect_err("must fail");
    assert_eq!(err.reject_kind(), Some(RejectKind::Credentials), "{err}");
    // The hash given directly works, and must be sent lower-case.
    let pwd = sim.state().accounts()[0].password.clone();
    let upper = fleet_workloads::tracksolid::sign::md5_lower_hex(&pwd).to_uppercase();
    let c = client_with(&sim, |cfg| {
        cfg.credentials.password = UserPassword::Md5Hex(upper)
    });
    assert_eq!(
        c.location_list().await.expect("login with the hash").len(),
        3
    );
}

#[tokio::test]
async fn tokens_invalidated_mid_run_cost_one_relogin() {
    let sim = start_sim(4, |_| {}).await;
    let c = client(&sim);
    c.device_list().await.expect("first call");
    let first = c.store().peek("target-a").expect("stored token");
    assert_eq!(sim.state().invalidate_tokens(), 1);

    let latest = c.location_list().await.expect("after re-login");
    assert_eq!(latest.len(), 4);
    let s = c.stats();
    assert_eq!((s.logins, s.token_rejections, s.retries), (2, 1, 0));
    let sim_stats = sim.state().stats();
    assert_eq!(sim_stats.outcome("1004"), 1);
    assert_eq!(sim_stats.logins, 2);
    assert_eq!(sim_stats.method(methods::USER_DEVICE_LOCATION_LIST), 2);
    let second = c.store().peek("target-a").expect("stored token");
    assert_ne!(first.access_token, second.access_token);
}

#[tokio::test]
async fn a_token_that_stays_refused_is_a_token_error_after_one_relogin() {
    // Every answer after login is 1004: the client logs in once more, then
    // gives up with a typed token error.
    let sim = start_sim(2, |_| {}).await;
    let c = client_with(&sim, |cfg| {
        cfg.protocol.token_error_codes = vec![1004, 1002]
    });
    // With 1002 configured as a token error, an IMEI of another account
    // (1002 "Illegal device") is refused twice.
    let err = c
        .locations(&["869999999999999"])
        .await
        .expect_err("must fail");
    assert!(
        matches!(err, TracksolidError::TokenRejected { .. }),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Token);
    assert_eq!(c.stats().logins, 2);
    assert_eq!(sim.state().stats().method(methods::DEVICE_LOCATION_GET), 2);
}

#[tokio::test]
async fn expired_tokens_are_renewed_before_use() {
    let sim = start_sim(2, |cfg| cfg.limits.token_ttl_cap_secs = 2).await;
    let c = client(&sim);
    c.device_list().await.expect("first");
    let t = c.store().peek("target-a").expect("token");
    // 2 s lifetime, margin capped at half of it.
    assert_eq!(t.expires_at.as_second() - t.obtained_at.as_second(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    c.device_list().await.expect("second");
    assert_eq!(c.stats().logins, 2);
    assert_eq!(
        sim.state().stats().outcome("1004"),
        0,
        "renewed before the server refused it"
    );
}

#[tokio::test]
async fn a_stale_token_from_the_store_is_replaced() {
    let sim = start_sim(2, |_| {}).await;
    let store = Arc::new(MemoryTokenStore::new());
    let stale = CachedToken {
        access_token: "0123456789abcdef0123456789abcdef".into(),
        refresh_token: None,
        obtained_at: Timestamp::now(),
        expires_at: ts(now_s() + 3600),
    };
    store.put("target-a", &stale).await.expect("put");
    let c = TracksolidClient::new(config_for(&sim, &sim.state().accounts()[0]), store.clone())
        .expect("client");
    assert_eq!(c.device_list().await.expect("list").len(), 2);
    assert_eq!((c.stats().logins, c.stats().token_rejections), (1, 1));
    assert_ne!(
        store.peek("target-a").map(|t| t.access_token),
        Some(stale.access_token)
    );
}

#[tokio::test]
async fn refresh_token_method() {
    let sim = start_sim(1, |_| {}).await;
    let c = client(&sim);
    let before = c.access_token().await.expect("login");
    let after = c.refresh_token().await.expect("refresh");
    assert_ne!(before, after.access_token);
    c.device_list()
        .await
        .expect("works with the refreshed token");
    assert_eq!(sim.state().stats().method(methods::TOKEN_REFRESH), 1);
    assert_eq!(c.stats().logins, 1);
}

#[tokio::test]
async fn rate_limiting_backs_off_then_succeeds() {
    let sim = start_sim(2, |_| {}).await;
    let c = client(&sim);
    c.access_token().await.expect("login");
    sim.state().patch_faults(&FaultsPatch {
        rate_limit_next: Some(2),
        ..FaultsPatch::default()
    });
    let started = std::time::Instant::now();
    assert_eq!(
        c.device_list().await.expect("third attempt succeeds").len(),
        2
    );
    // Back-offs of 20 ms and 40 ms, each at least halved by jitter.
    assert!(
        started.elapsed() >= Duration::from_millis(30),
        "{:?}",
        started.elapsed()
    );
    let s = c.stats();
    assert_eq!((s.rate_limited, s.retries), (2, 2));
    assert_eq!(sim.state().stats().outcome("1006"), 2);
    assert_eq!(sim.state().stats().method(methods::USER_DEVICE_LIST), 3);
}

#[tokio::test]
async fn a_requests_per_second_limit_is_absorbed() {
    let sim = start_sim(2, |cfg| cfg.faults.rate_limit_per_sec = Some(2)).await;
    let c = client_with(&sim, |cfg| {
        cfg.retry.rate_limit_base_delay = Duration::from_millis(400);
        cfg.retry.max_delay = Duration::from_millis(1200);
        cfg.retry.max_attempts = 6;
    });
    for _ in 0..5 {
        c.device_list().await.expect("eventually served");
    }
    let limited = sim.state().stats().outcome("1006");
    assert!(limited >= 1, "six requests at 2/s must hit the limit");
    assert_eq!(c.stats().rate_limited, limited);
    assert_eq!(c.stats().retries, limited);
    assert_eq!(sim.state().stats().outcome("0"), 6);
}

#[tokio::test]
async fn rate_limiting_that_persists_is_a_typed_error() {
    let sim = start_sim(1, |_| {}).await;
    let c = client(&sim);
    c.access_token().await.expect("login");
    sim.state().patch_faults(&FaultsPatch {
        rate_limit_next: Some(100),
        ..FaultsPatch::default()
    });
    let err = c.device_list().await.expect_err("must fail");
    assert!(
        matches!(err, TracksolidError::RateLimited { attempts: 4, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), Some(&ApiCode::Num(1006)));
    assert_eq!(sim.state().stats().outcome("1006"), 4);
}

#[tokio::test]
async fn a_5xx_burst_is_retried() {
    let sim = start_sim(2, |_| {}).await;
    let c = client(&sim);
    c.access_token().await.expect("login");
    sim.state().patch_faults(&FaultsPatch {
        fail_next: Some(2),
        ..FaultsPatch::default()
    });
    assert_eq!(
        c.location_list()
            .await
            .expect("served on the third attempt")
            .len(),
        2
    );
    assert_eq!(c.stats().retries, 2);
    assert_eq!(sim.state().stats().outcome("http500"), 2);
    assert_eq!(
        sim.state()
            .stats()
            .method(methods::USER_DEVICE_LOCATION_LIST),
        3
    );
}

#[tokio::test]
async fn system_busy_is_retried() {
    let sim = start_sim(1, |_| {}).await;
    let c = client(&sim);
    c.access_token().await.expect("login");
    sim.state().patch_faults(&FaultsPatch {
        busy_next: Some(1),
        ..FaultsPatch::default()
    });
    c.device_list().await.expect("served on the second attempt");
    assert_eq!(c.stats().retries, 1);
    assert_eq!(sim.state().stats().outcome("-1"), 1);
}

#[tokio::test]
async fn an_account_that_is_down_fails_with_a_typed_error_after_the_retries() {
    let sim = start_sim(2, |_| {}).await;
    let c = client(&sim);
    c.access_token().await.expect("login");
    let key = sim.state().accounts()[0].app_key.clone();
    sim.state().patch_faults(&FaultsPatch {
        down_accounts: Some([key].into()),
        ..FaultsPatch::default()
    });
    let err = c.device_list().await.expect_err("must fail");
    match &err {
        TracksolidError::Transient {
            method,
            cause,
            attempts,
        } => {
            assert_eq!(method, methods::USER_DEVICE_LIST);
            assert_eq!(*cause, TransientCause::HttpStatus(503));
            assert_eq!(*attempts, 4);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(err.class(), ErrorClass::Transient);
    assert_eq!(sim.state().stats().outcome("http503"), 4);
    assert_eq!(c.stats().retries, 3);
}

#[tokio::test]
async fn a_closed_port_is_a_transient_connect_error() {
    let sim = start_sim(1, |_| {}).await;
    let cfg = config_for(&sim, &sim.state().accounts()[0]);
    sim.stop().await.expect("stops");
    let mut cfg = cfg;
    cfg.retry = RetryPolicy::immediate(2);
    let c = TracksolidClient::new(cfg, MemoryTokenStore::new()).expect("client");
    let err = c.device_list().await.expect_err("nothing listens");
    assert!(
        matches!(
            err,
            TracksolidError::Transient {
                cause: TransientCause::Connect(_),
                attempts: 2,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn timeouts_are_transient() {
    let sim = start_sim(1, |_| {}).await;
    let c = client_with(&sim, |cfg| {
        cfg.request_timeout = Duration::from_millis(150);
        cfg.retry = RetryPolicy::immediate(2);
    });
    sim.state().patch_faults(&FaultsPatch {
        latency_ms: Some(600),
        ..FaultsPatch::default()
    });
    let err = c.device_list().await.expect_err("too slow");
    assert!(
        matches!(
            err,
            TracksolidError::Transient {
                cause: TransientCause::Timeout,
                attempts: 2,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn limits_are_enforced_by_the_server_and_checked_by_the_client() {
    let sim = start_sim(3, |_| {}).await;
    let c = client(&sim);
    let now = now_s();
    let imei = imeis(&sim, 0)[0].clone();
    let param_error = |r: Result<_, TracksolidError>| match r {
        Err(TracksolidError::Rejected {
            code: ApiCode::Num(1001),
            kind: RejectKind::Parameter,
            ..
        }) => {}
        other => panic!(
            "expected a 1001 parameter error, got {:?}",
            other.map(|_: fleet_workloads::tracksolid::Envelope| ())
        ),
    };
    // 101 IMEIs in one location.get.
    let many: Vec<String> = (0..101).map(|i| format!("86000000{i:07}")).collect();
    param_error(
        c.call(
            methods::DEVICE_LOCATION_GET,
            &Params::new().set("imeis", many.join(",")),
        )
        .await,
    );
    // An 8-day track window.
    let track = Params::new()
        .set("imei", imei.as_str())
        .set_time("begin_time", ts(now - 9 * DAY))
        .set_time("end_time", ts(now - DAY));
    param_error(c.call(methods::DEVICE_TRACK_LIST, &track).await);
    // A 40-day alarm window.
    let alarms = Params::new()
        .set("imeis", imei.as_str())
        .set_time("begin_time", ts(now - 41 * DAY))
        .set_time("end_time", ts(now - DAY));
    param_error(c.call(methods::DEVICE_ALARM_LIST, &alarms).await);
    // page_size 500.
    param_error(
        c.alarm_page(&[imei.as_str()], ts(now - DAY), ts(now), 1, 500)
            .await
            .map(|_| Default::default()),
    );
    // The client refuses an 8-day track window itself.
    let before = sim.state().stats().requests;
    let err = c
        .track_window(&imei, ts(now - 9 * DAY), ts(now - DAY))
        .await
        .expect_err("too long");
    assert!(matches!(err, TracksolidError::InvalidRequest(_)));
    assert_eq!(sim.state().stats().requests, before);
    // ... and splits a 20-day track into 3 calls.
    c.track(&imei, ts(now - 20 * DAY), ts(now - DAY))
        .await
        .expect("split track");
    assert_eq!(
        sim.state().stats().method(methods::DEVICE_TRACK_LIST),
        1 + 3
    );
    // An IMEI of nobody.
    let err = c
        .track_window("860099999999999", ts(now - DAY), ts(now))
        .await
        .expect_err("unknown");
    assert_eq!(err.reject_kind(), Some(RejectKind::IllegalUserOrDevice));
}

async fn post_form(url: &str, form: &[(String, String)]) -> serde_json::Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client");
    let body = http
        .post(url)
        .form(form)
        .send()
        .await
        .expect("sent")
        .bytes()
        .await
        .expect("body");
    serde_json::from_slice(&body).expect("json")
}

#[tokio::test]
async fn the_timestamp_must_be_within_ten_minutes() {
    let sim = start_sim(1, |_| {}).await;
    let a = sim.state().accounts()[0].clone();
    let caller = Caller {
        app_key: &a.app_key,
        app_secret: &a.app_secret,
        version: "1.0",
    };
    let params = Params::new()
        .set("user_id", a.user_id.as_str())
        .set(
            "user_pwd_md5",
            fleet_workloads::tracksolid::sign::md5_lower_hex(&a.password),
        )
        .set("expires_in", "7200");
    let now = now_s();
    let late = post_form(
        &sim.endpoint(),
        &signed_form(caller, methods::TOKEN_GET, &params, None, ts(now - 11 * 60)),
    )
    .await;
    assert_eq!(late["code"], 1001, "{late}");
    let early = post_form(
        &sim.endpoint(),
        &signed_form(caller, methods::TOKEN_GET, &params, None, ts(now + 11 * 60)),
    )
    .await;
    assert_eq!(early["code"], 1001, "{early}");
    let ok = post_form(
        &sim.endpoint(),
        &signed_form(caller, methods::TOKEN_GET, &params, None, ts(now - 9 * 60)),
    )
    .await;
    assert_eq!(ok["code"], 0, "{ok}");
    assert_eq!(ok["result"]["expiresIn"], 7200);
}

#[tokio::test]
async fn several_accounts_in_one_simulator() {
    let sim = start_sim(3, |cfg| {
        cfg.accounts = vec![AccountConfig::numbered(1), AccountConfig::numbered(2)]
    })
    .await;
    let a = TracksolidClient::new(
        config_for(&sim, &sim.state().accounts()[0]),
        MemoryTokenStore::new(),
    )
    .expect("a");
    let mut cfg_b = config_for(&sim, &sim.state().accounts()[1]);
    cfg_b.target = "target-b".into();
    let b = TracksolidClient::new(cfg_b.clone(), MemoryTokenStore::new()).expect("b");
    let da: HashSet<String> = a
        .device_list()
        .await
        .expect("a")
        .into_iter()
        .map(|d| d.imei)
        .collect();
    let db: HashSet<String> = b
        .device_list()
        .await
        .expect("b")
        .into_iter()
        .map(|d| d.imei)
        .collect();
    assert_eq!((da.len(), db.len()), (3, 3));
    assert!(da.is_disjoint(&db));
    // A's token is no good with B's app key.
    let a_token = a.access_token().await.expect("token");
    let store = MemoryTokenStore::new();
    store
        .put(
            "target-b",
            &CachedToken {
                access_token: a_token,
                refresh_token: None,
                obtained_at: Timestamp::now(),
                expires_at: ts(now_s() + 600),
            },
        )
        .await
        .expect("put");
    let b2 = TracksolidClient::new(cfg_b, store).expect("b2");
    b2.device_list().await.expect("re-logs in");
    assert_eq!(b2.stats().token_rejections, 1);
    // B's devices are illegal for A.
    let b_imei = db.iter().next().cloned().expect("imei");
    let err = a.locations(&[b_imei]).await.expect_err("not A's device");
    assert_eq!(err.reject_kind(), Some(RejectKind::IllegalUserOrDevice));
}

#[tokio::test]
async fn device_faults_show_in_the_data() {
    let sim = start_sim(5, |cfg| {
        cfg.faults.zero_fix_devices = 1;
        cfg.faults.clock_2019_devices = 1;
        cfg.faults.future_clock_devices = 1;
        cfg.faults.duplicate_points = true;
        cfg.faults.late_points = true;
        cfg.faults.codes_as_strings = true;
    })
    .await;
    let c = client(&sim);
    let all = imeis(&sim, 0);
    let latest = c
        .location_list()
        .await
        .expect("locations with string codes");
    let find = |i: usize| latest.iter().find(|l| l.imei == all[i]).expect("device");
    assert!(!find(0).has_fix());
    assert_eq!(find(0).expire_flag, Some(false));
    let year = |t: Option<Timestamp>| t.map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).year());
    assert!(
        year(find(1).gps_time) <= Some(2019),
        "{:?}",
        find(1).gps_time
    );
    assert!(secs(find(2).gps_time) > now_s() + 2 * DAY);
    assert!(find(3).has_fix() && secs(find(3).gps_time) <= now_s());

    let (b, e) = past_window(1);
    let track = c.track(&all[3], ts(b), ts(e)).await.expect("track");
    let times: Vec<i64> = track.points.iter().map(|p| secs(p.gps_time)).collect();
    let distinct: HashSet<i64> = times.iter().copied().collect();
    assert!(distinct.len() < times.len(), "duplicate points");
    assert!(
        track.points.iter().any(|p| p.is_retransmitted()),
        "late points"
    );
    let zero = c.track(&all[0], ts(b), ts(e)).await.expect("track");
    assert!(!zero.points.is_empty() && zero.points.iter().all(|p| !p.has_fix()));

    // String codes on errors too: a 1004 as "1004" still re-logs in.
    sim.state().invalidate_tokens();
    c.device_list().await.expect("re-login with string codes");
    assert_eq!(c.stats().token_rejections, 1);
}

#[tokio::test]
async fn faults_can_be_set_over_http() {
    let sim = start_sim(1, |_| {}).await;
    let c = client(&sim);
    c.access_token().await.expect("login");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().no_proxy().build().expect("http");
    let resp = http
        .post(format!("{}/faults", sim.admin_base()))
        .header("content-type", "application/json")
        .body(r#"{"fail_next":1,"fail_status":502}"#)
        .send()
        .await
        .expect("admin");
    assert!(resp.status().is_success());
    let bad = http
        .post(format!("{}/faults", sim.admin_base()))
        .body(r#"{"nope":1}"#)
        .send()
        .await
        .expect("admin");
    assert_eq!(bad.status().as_u16(), 400);
    c.device_list().await.expect("retried past the 502");
    assert_eq!(sim.state().stats().outcome("http502"), 1);
    let resp = http
        .post(format!("{}/tokens/invalidate", sim.admin_base()))
        .send()
        .await
        .expect("admin");
    let v: serde_json::Value =
        serde_json::from_slice(&resp.bytes().await.expect("body")).expect("json");
    assert_eq!(v["invalidated"], 1);
    let accounts: serde_json::Value = serde_json::from_slice(
        &http
            .get(format!("{}/accounts", sim.admin_base()))
            .send()
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body"),
    )
    .expect("json");
    assert_eq!(accounts[0]["imeis"].as_array().map(Vec::len), Some(1));
    assert!(accounts[0].get("app_secret").is_none());
}

#[tokio::test]
async fn concurrent_calls_share_one_login() {
    let sim = start_sim(3, |_| {}).await;
    let c = Arc::new(client(&sim));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.device_list().await.map(|d| d.len())
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task").expect("call"), 3);
    }
    assert_eq!(c.stats().logins, 1);
    assert_eq!(sim.state().stats().logins, 1);
}
