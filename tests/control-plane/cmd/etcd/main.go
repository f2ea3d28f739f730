// Command etcd is a minimal single-member etcd for tests, built on
// go.etcd.io/etcd/server/v3/embed. It only listens on loopback, skips fsync
// (test data is throw-away) and exits cleanly on SIGTERM/SIGINT.
//
//	etcd --data-dir DIR [--port 2379 --peer-port 2380]
//	etcd --data-dir DIR --listen-client-urls http://127.0.0.1:2379 \
//	     --advertise-client-urls http://127.0.0.1:2379
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "etcd: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		name          = flag.String("name", "test", "member name")
		dataDir       = flag.String("data-dir", "", "data directory (required)")
		port          = flag.Int("port", 2379, "client port on 127.0.0.1 (ignored if --listen-client-urls is set)")
		peerPort      = flag.Int("peer-port", 2380, "peer port on 127.0.0.1 (ignored if --listen-peer-urls is set)")
		listenClient  = flag.String("listen-client-urls", "", "comma-separated client URLs to listen on (loopback only)")
		advertClient  = flag.String("advertise-client-urls", "", "comma-separated client URLs to advertise (default: listen URLs)")
		listenPeer    = flag.String("listen-peer-urls", "", "comma-separated peer URLs to listen on (loopback only)")
		progressEvery = flag.Duration("watch-progress-notify-interval", 0, "periodic watch progress notifications (0 = etcd default)")
		logLevel      = flag.String("log-level", "warn", "debug, info, warn, error")
		readyTimeout  = flag.Duration("ready-timeout", 60*time.Second, "give up if the server is not ready in time")
	)
	flag.Parse()
	if *dataDir == "" {
		return errors.New("--data-dir is required")
	}

	defaultURL := func(p int) string { return fmt.Sprintf("http://127.0.0.1:%d", p) }
	if *listenClient == "" {
		*listenClient = defaultURL(*port)
	}
	if *advertClient == "" {
		*advertClient = *listenClient
	}
	if *listenPeer == "" {
		*listenPeer = defaultURL(*peerPort)
	}

	lcurls, err := loopbackURLs("listen-client-urls", *listenClient)
	if err != nil {
		return err
	}
	acurls, err := loopbackURLs("advertise-client-urls", *advertClient)
	if err != nil {
		return err
	}
	lpurls, err := loopbackURLs("listen-peer-urls", *listenPeer)
	if err != nil {
		return err
	}

	cfg := embed.NewConfig()
	cfg.Name = *name
	cfg.Dir = *dataDir
	cfg.ListenClientUrls = lcurls
	cfg.AdvertiseClientUrls = acurls
	cfg.ListenPeerUrls = lpurls
	cfg.AdvertisePeerUrls = lpurls
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ListenMetricsUrls = nil
	cfg.UnsafeNoFsync = true
	// NewConfig leaves this at 0, which logs every request as "expensive".
	cfg.WarningUnaryRequestDuration = embed.DefaultWarningUnaryRequestDuration
	cfg.Logger = "zap"
	cfg.LogLevel = *logLevel
	cfg.LogOutputs = []string{"stderr"}
	if *progressEvery > 0 {
		cfg.WatchProgressNotifyInterval = *progressEvery
	}

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	// Close exactly once on every path out of here.
	stop := func() {
		e.Close() // graceful: stops listeners and the raft node, closes the backend
		<-e.Server.StopNotify()
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	select {
	case <-e.Server.ReadyNotify():
		fmt.Fprintf(os.Stderr, "etcd: ready, serving clients on %s\n", *listenClient)
	case <-time.After(*readyTimeout):
		stop()
		return fmt.Errorf("server not ready after %s", *readyTimeout)
	case sig := <-sigs:
		fmt.Fprintf(os.Stderr, "etcd: got %s before ready, stopping\n", sig)
		stop()
		return nil
	}

	select {
	case sig := <-sigs:
		fmt.Fprintf(os.Stderr, "etcd: got %s, stopping\n", sig)
		stop()
		fmt.Fprintln(os.Stderr, "etcd: stopped")
		return nil
	case err := <-e.Err():
		stop()
		return fmt.Errorf("server error: %w", err)
	case <-e.Server.StopNotify():
		return errors.New("server stopped unexpectedly")
	}
}

// loopbackURLs parses a comma-separated URL list and refuses anything that is
// not http(s) on a loopback address, so tests never expose etcd.
func loopbackURLs(flagName, list string) ([]url.URL, error) {
	var out []url.URL
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("--%s: %q: %w", flagName, s, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, fmt.Errorf("--%s: %q: scheme must be http or https", flagName, s)
		}
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("--%s: %q: only loopback addresses are allowed", flagName, s)
		}
		if u.Port() == "" {
			return nil, fmt.Errorf("--%s: %q: a port is required", flagName, s)
		}
		out = append(out, *u)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--%s: no URLs given", flagName)
	}
	return out, nil
}
