package argocd

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const repoRoot = "../.."

type application struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec struct {
		Source struct {
			RepoURL string `json:"repoURL"`
			Path    string `json:"path"`
			Helm    *struct {
				ValuesObject map[string]any `json:"valuesObject"`
			} `json:"helm"`
			Directory *struct {
				Recurse bool   `json:"recurse"`
				Include string `json:"include"`
			} `json:"directory"`
		} `json:"source"`
		SyncPolicy struct {
			Automated struct {
				Prune    bool `json:"prune"`
				SelfHeal bool `json:"selfHeal"`
			} `json:"automated"`
			SyncOptions []string `json:"syncOptions"`
		} `json:"syncPolicy"`
		IgnoreDifferences []any `json:"ignoreDifferences"`
	} `json:"spec"`
}

// examples/argocd/application.yaml points at what this repository holds,
// with the sync policy the docs promise.
func TestApplications(t *testing.T) {
	data := readFile(t, filepath.Join(repoRoot, "examples/argocd/application.yaml"))
	apps := map[string]application{}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var probe map[string]any
		if err := yaml.Unmarshal([]byte(doc), &probe); err != nil {
			t.Fatal(err)
		}
		if probe == nil {
			continue // the leading comment block
		}
		var app application
		if err := yaml.Unmarshal([]byte(doc), &app); err != nil {
			t.Fatal(err)
		}
		if app.APIVersion != "argoproj.io/v1alpha1" || app.Kind != "Application" {
			t.Fatalf("unexpected document %s/%s", app.APIVersion, app.Kind)
		}
		apps[app.Metadata.Name] = app
	}
	if len(apps) != 2 {
		t.Fatalf("want 2 Applications, got %d", len(apps))
	}
	for name, app := range apps {
		s := app.Spec
		if !s.SyncPolicy.Automated.Prune || !s.SyncPolicy.Automated.SelfHeal {
			t.Errorf("%s: syncPolicy.automated needs prune and selfHeal", name)
		}
		if !slices.Contains(s.SyncPolicy.SyncOptions, "ServerSideApply=true") {
			t.Errorf("%s: no ServerSideApply=true", name)
		}
		if len(s.IgnoreDifferences) > 0 {
			t.Errorf("%s: ignoreDifferences should not be needed (the schema has no defaults)", name)
		}
		if s.Source.RepoURL != "https://github.com/example/fleetpipeline.git" {
			t.Errorf("%s: repoURL %q; the example uses the documented placeholder", name, s.Source.RepoURL)
		}
		if st, err := os.Stat(filepath.Join(repoRoot, s.Source.Path)); err != nil || !st.IsDir() {
			t.Errorf("%s: source.path %q is not a directory of this repository", name, s.Source.Path)
		}
	}

	op, ok := apps["fleet-operator"]
	if !ok {
		t.Fatal("no Application fleet-operator")
	}
	if op.Spec.Source.Path != "charts/fleet-operator" {
		t.Errorf("fleet-operator: path %q", op.Spec.Source.Path)
	}
	if _, err := os.Stat(filepath.Join(repoRoot, op.Spec.Source.Path, "Chart.yaml")); err != nil {
		t.Errorf("fleet-operator: %v", err)
	}
	// Every value set in the Application is a value the chart has.
	var values map[string]any
	if err := yaml.Unmarshal(readFile(t, filepath.Join(repoRoot, op.Spec.Source.Path, "values.yaml")), &values); err != nil {
		t.Fatal(err)
	}
	if op.Spec.Source.Helm != nil {
		for key := range op.Spec.Source.Helm.ValuesObject {
			if _, ok := values[key]; !ok {
				t.Errorf("fleet-operator: valuesObject.%s is not a value of the chart", key)
			}
		}
	}

	pl, ok := apps["fleet-pipelines"]
	if !ok {
		t.Fatal("no Application fleet-pipelines")
	}
	if pl.Spec.Source.Path != "examples" || pl.Spec.Source.Directory == nil || pl.Spec.Source.Directory.Recurse {
		t.Errorf("fleet-pipelines: must sync examples/ without recursing into examples/argocd")
	}
	matches, _ := filepath.Glob(filepath.Join(repoRoot, "examples", pl.Spec.Source.Directory.Include))
	var pipelines int
	for _, m := range matches {
		if strings.Contains(string(readFile(t, m)), "kind: FleetPipeline") {
			pipelines++
		}
	}
	if pipelines == 0 {
		t.Errorf("fleet-pipelines: examples/%s matches no FleetPipeline manifest", pl.Spec.Source.Directory.Include)
	}
}
