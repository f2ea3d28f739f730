// Package argocd tests docs/argocd/health.lua, the Argo CD health check for
// FleetPipeline, the way Argo CD runs it: under gopher-lua with only the
// libraries Argo CD opens for a custom health script, the object given as the
// global `obj` (nested Lua tables decoded from the object as the apiserver
// returns it), and the returned table read back as {status, message}.
//
// The objects are real: testdata/*.yaml were captured from the test
// kube-apiserver with the operator running (capture.sh).
package argocd

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

const (
	healthLua = "../../docs/argocd/health.lua"
	snippet   = "../../docs/argocd/argocd-cm-snippet.yaml"
	configKey = "resource.customizations.health.fleetops.dev_FleetPipeline"
)

// Health statuses Argo CD accepts from a script; anything else becomes
// Unknown with "Lua returned an invalid health status".
var validStatus = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true,
	"Suspended": true, "Missing": true, "Unknown": true,
}

type health struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// newState opens what Argo CD opens for a health script from argocd-cm
// (resource.customizations.useOpenLibs unset): the package, base and table
// libraries and a reduced os library. The os library is not opened here, so
// a script that used it would fail this test rather than pass by accident.
func newState() *lua.LState {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			panic(err)
		}
	}
	return l
}

// toLua converts a decoded object to Lua values as Argo CD does: maps to
// hash tables, lists to array tables (1-based), int64 and float64 to
// numbers, nil to nil.
func toLua(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case []any:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for k, item := range v {
			t.RawSetH(lua.LString(k), toLua(l, item))
		}
		return t
	case nil:
		return lua.LNil
	}
	panic(fmt.Sprintf("unexpected %T in object", v))
}

// runHealth runs the script on obj and returns what Argo CD would record.
func runHealth(t *testing.T, script string, obj map[string]any) health {
	t.Helper()
	l := newState()
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second) // Argo CD's limit
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		t.Fatalf("health.lua failed: %v", err)
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("health.lua returned %s, Argo CD expects a table", l.Get(-1).Type())
	}
	var h health
	var bad []string
	ret.ForEach(func(k, v lua.LValue) {
		s, isString := v.(lua.LString)
		switch {
		case k.String() == "status" && isString:
			h.Status = string(s)
		case k.String() == "message" && isString:
			h.Message = string(s)
		default:
			bad = append(bad, fmt.Sprintf("%s=%s(%s)", k, v, v.Type()))
		}
	})
	if len(bad) > 0 {
		t.Fatalf("health.lua returned unexpected fields: %v", bad)
	}
	if !validStatus[h.Status] {
		t.Fatalf("health.lua returned status %q, which Argo CD turns into Unknown", h.Status)
	}
	return h
}

// decodeObject parses YAML as kubectl/the apiserver would hand it to Argo CD
// (unstructured JSON: integers as int64, other numbers as float64).
func decodeObject(t *testing.T, data []byte) map[string]any {
	t.Helper()
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatalf("YAML: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		t.Fatalf("JSON: %v", err)
	}
	return convertNumbers(obj).(map[string]any)
}

func convertNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, err := v.Float64()
		if err != nil || math.IsInf(f, 0) {
			panic(fmt.Sprintf("bad number %q", v))
		}
		return f
	case []any:
		for i := range v {
			v[i] = convertNumbers(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = convertNumbers(v[k])
		}
	}
	return v
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func loadCapture(t *testing.T, name string) map[string]any {
	t.Helper()
	return decodeObject(t, readFile(t, filepath.Join("testdata", name+".yaml")))
}

// What each captured state must map to.
var captured = []struct {
	name    string
	status  string
	message string // substring
	why     string
}{
	{"healthy", "Healthy", "Reconciled: every owned object matches the spec",
		"Ready=True Reconciled at the current generation"},
	{"suspended", "Suspended", "Suspended: spec.suspend is true",
		"Ready=True with reason Suspended"},
	{"secret-missing", "Degraded", `SecretMissing: Secret "jimi-push-missing" referenced by spec.webhook.tokenSecretRef does not exist`,
		"a failure on the current generation, though status.observedGeneration was never set"},
	{"broken-by-edit", "Degraded", `SecretMissing: Secret "jimi-push-missing"`,
		"generation 2 failed: status.observedGeneration stays 1 but the conditions observed 2"},
	{"generation-behind", "Progressing", "waiting for the controller to observe generation 2 (observed: 1)",
		"the spec changed while the operator was stopped: Ready=True is stale"},
	{"stale-failure", "Progressing", "waiting for the controller to observe generation 2",
		"the spec was fixed while the operator was stopped: the SecretMissing failure is stale"},
	{"no-status", "Progressing", "waiting for the controller to observe generation 1 (no status yet)",
		"created while no operator ran"},
}

func script(t *testing.T) string {
	t.Helper()
	return string(readFile(t, healthLua))
}

func TestCapturedObjects(t *testing.T) {
	s := script(t)
	for _, c := range captured {
		t.Run(c.name, func(t *testing.T) {
			got := runHealth(t, s, loadCapture(t, c.name))
			if got.Status != c.status || !strings.Contains(got.Message, c.message) {
				t.Errorf("%s (%s):\n got  %s %q\n want %s, message containing %q", c.name, c.why, got.Status, got.Message, c.status, c.message)
			}
		})
	}
}

// Every capture has an expectation, and every expectation a capture, so a
// new state added to capture.sh cannot go unchecked.
func TestEveryCaptureIsChecked(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var onDisk, expected []string
	for _, f := range files {
		onDisk = append(onDisk, strings.TrimSuffix(filepath.Base(f), ".yaml"))
	}
	for _, c := range captured {
		expected = append(expected, c.name)
	}
	sort.Strings(onDisk)
	sort.Strings(expected)
	if strings.Join(onDisk, ",") != strings.Join(expected, ",") {
		t.Errorf("testdata has %v, the test expects %v", onDisk, expected)
	}
}

// The captures are what they claim to be (guards against a capture.sh run
// that raced the operator).
func TestCapturesShowTheirState(t *testing.T) {
	gen := func(o map[string]any) any { return o["metadata"].(map[string]any)["generation"] }
	status := func(o map[string]any) map[string]any {
		s, _ := o["status"].(map[string]any)
		return s
	}
	if o := loadCapture(t, "no-status"); status(o) != nil {
		t.Errorf("no-status has a status: %v", status(o))
	}
	for _, name := range []string{"generation-behind", "stale-failure", "broken-by-edit"} {
		o := loadCapture(t, name)
		if gen(o) != int64(2) {
			t.Errorf("%s: generation %v, want 2", name, gen(o))
		}
	}
	if o := loadCapture(t, "secret-missing"); status(o)["observedGeneration"] != nil {
		t.Errorf("secret-missing: status.observedGeneration %v, want none (never reconciled)", status(o)["observedGeneration"])
	}
	if o := loadCapture(t, "broken-by-edit"); status(o)["observedGeneration"] != int64(1) {
		t.Errorf("broken-by-edit: status.observedGeneration %v, want 1", status(o)["observedGeneration"])
	}
}

// Variations of the captured objects for branches no operator state reaches
// today (conditions the operator might write in a later version, or a
// partly written status).
func TestEdgeCases(t *testing.T) {
	s := script(t)
	conditions := func(o map[string]any) []any {
		return o["status"].(map[string]any)["conditions"].([]any)
	}
	setCondition := func(o map[string]any, typ string, fields map[string]any) {
		for _, c := range conditions(o) {
			c := c.(map[string]any)
			if c["type"] == typ {
				for k, v := range fields {
					if v == nil {
						delete(c, k)
					} else {
						c[k] = v
					}
				}
			}
		}
	}
	cases := []struct {
		name    string
		base    string
		edit    func(o map[string]any)
		status  string
		message string
	}{
		{"empty conditions list", "healthy", func(o map[string]any) {
			o["status"] = map[string]any{"conditions": []any{}}
		}, "Progressing", "(no status yet)"},
		{"Ready Unknown", "healthy", func(o map[string]any) {
			setCondition(o, "Ready", map[string]any{"status": "Unknown", "reason": "Reconciling", "message": "first pass"})
		}, "Progressing", "Ready is Unknown: Reconciling: first pass"},
		{"Progressing=True without a failure", "healthy", func(o map[string]any) {
			setCondition(o, "Ready", map[string]any{"status": "False", "reason": "RollingOut", "message": "x"})
			setCondition(o, "Progressing", map[string]any{"status": "True", "reason": "RollingOut", "message": "webhook 1/2 updated"})
		}, "Progressing", "RollingOut: webhook 1/2 updated"},
		{"ApplyFailed without a Degraded condition", "secret-missing", func(o map[string]any) {
			o["status"].(map[string]any)["conditions"] = []any{map[string]any{
				"type": "Ready", "status": "False", "reason": "ApplyFailed", "message": "forbidden", "observedGeneration": int64(1),
			}}
		}, "Degraded", "ApplyFailed: forbidden"},
		{"InvalidSpec", "secret-missing", func(o map[string]any) {
			setCondition(o, "Ready", map[string]any{"reason": "InvalidSpec", "message": "spec.retention.positions: bad"})
			setCondition(o, "Degraded", map[string]any{"status": "False"})
		}, "Degraded", "InvalidSpec: spec.retention.positions: bad"},
		{"conditions without observedGeneration use status.observedGeneration", "healthy", func(o map[string]any) {
			for _, typ := range []string{"Ready", "Progressing", "Degraded"} {
				setCondition(o, typ, map[string]any{"observedGeneration": nil})
			}
		}, "Healthy", "Reconciled"},
		{"object without metadata.generation", "healthy", func(o map[string]any) {
			delete(o["metadata"].(map[string]any), "generation")
		}, "Healthy", "Reconciled"},
		{"no Ready condition but a current one", "healthy", func(o map[string]any) {
			o["status"].(map[string]any)["conditions"] = []any{map[string]any{
				"type": "Progressing", "status": "False", "reason": "UpToDate", "observedGeneration": int64(1),
			}}
		}, "Progressing", "waiting for the Ready condition"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := loadCapture(t, c.base)
			c.edit(o)
			got := runHealth(t, s, o)
			if got.Status != c.status || !strings.Contains(got.Message, c.message) {
				t.Errorf("got %s %q, want %s with %q", got.Status, got.Message, c.status, c.message)
			}
		})
	}
}

// Argo CD does not open Lua's string library for custom health scripts; the
// harness must not either, or a script using string.format would pass here
// and fail in Argo CD.
func TestHarnessMatchesArgoCDLibraries(t *testing.T) {
	l := newState()
	defer l.Close()
	for _, lib := range []string{"string", "io", "debug", "math"} {
		if l.GetGlobal(lib) != lua.LNil {
			t.Errorf("library %s is open; Argo CD does not open it for argocd-cm health scripts", lib)
		}
	}
	for _, fn := range []string{"ipairs", "pairs", "tostring", "type"} {
		if l.GetGlobal(fn) == lua.LNil {
			t.Errorf("base function %s missing", fn)
		}
	}
	if err := l.DoString(`return ("x"):upper()`); err == nil {
		t.Error("string methods work without the string library")
	}
}

var update = flag.Bool("update", false, "rewrite docs/argocd/argocd-cm-snippet.yaml from health.lua")

const snippetHeader = `# The FleetPipeline health check for Argo CD: merge this key into the argocd-cm
# ConfigMap of your Argo CD installation (see docs/argocd.md), e.g.
#   kubectl -n argocd patch configmap argocd-cm --patch-file docs/argocd/argocd-cm-snippet.yaml
# or put the key under configs.cm in the argo-cd Helm chart's values.
#
# Generated from docs/argocd/health.lua; do not edit here. After changing
# health.lua run: (cd tests/argocd && go test ./... -run TestSnippet -args -update)
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
  ` + configKey + `: |
`

func renderSnippet(lua string) string {
	var b strings.Builder
	b.WriteString(snippetHeader)
	for _, line := range strings.SplitAfter(lua, "\n") {
		if strings.TrimSpace(line) == "" {
			b.WriteString(strings.TrimLeft(line, " \t"))
		} else {
			b.WriteString("    " + line)
		}
	}
	return b.String()
}

// The argocd-cm snippet carries exactly docs/argocd/health.lua.
func TestSnippetEmbedsHealthLua(t *testing.T) {
	if *update {
		if err := os.WriteFile(snippet, []byte(renderSnippet(script(t))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var cm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string            `json:"name"`
			Namespace string            `json:"namespace"`
			Labels    map[string]string `json:"labels"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.UnmarshalStrict(readFile(t, snippet), &cm); err != nil {
		t.Fatalf("%s: %v", snippet, err)
	}
	if cm.Kind != "ConfigMap" || cm.Metadata.Name != "argocd-cm" {
		t.Errorf("snippet is %s/%s, want ConfigMap/argocd-cm", cm.Kind, cm.Metadata.Name)
	}
	embedded, ok := cm.Data[configKey]
	if !ok {
		t.Fatalf("snippet has no data key %s (keys: %v)", configKey, keys(cm.Data))
	}
	if want := script(t); embedded != want {
		t.Errorf("the snippet's %s differs from %s; regenerate the snippet from health.lua", configKey, healthLua)
	}
}

func keys(m map[string]string) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}
