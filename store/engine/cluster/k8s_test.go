//go:build k8s

package cluster

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// decodeJob decodes a manifest strictly into the batch/v1 Job type: a
// field the API does not have, or a value of the wrong type, fails.
func decodeJob(t *testing.T, manifest string) (batchv1.Job, error) {
	t.Helper()
	raw, err := yaml.YAMLToJSONStrict([]byte(manifest))
	if err != nil {
		return batchv1.Job{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var job batchv1.Job
	err = dec.Decode(&job)
	return job, err
}

// The Indexed Job manifest decodes strictly into the Kubernetes API's
// batch/v1 types (validated offline: no cluster runs it here) and says
// what the sweep needs: one completion per task, the bound on parallel
// pods, retries per index, the address from a Secret and the checkpoint
// root from a claim mounted at its own path.
func TestK8sManifestDecodesStrictly(t *testing.T) {
	s := testSubmission()
	s.Parallel = 3
	s.K8s = K8s{Image: "thaw:1.0", Namespace: "ml", CPU: "1", Mem: "2Gi", BackoffLimitPerIndex: 4}
	m, err := s.K8sManifest()
	if err != nil {
		t.Fatal(err)
	}
	job, err := decodeJob(t, m)
	if err != nil {
		t.Fatalf("strict decode: %v\n%s", err, m)
	}
	if job.APIVersion != "batch/v1" || job.Kind != "Job" || job.Name != s.JobName() || job.Namespace != "ml" {
		t.Errorf("type meta %s %s, name %q in %q", job.APIVersion, job.Kind, job.Name, job.Namespace)
	}
	sp := job.Spec
	if sp.CompletionMode == nil || *sp.CompletionMode != batchv1.IndexedCompletion {
		t.Errorf("completionMode %v, want Indexed", sp.CompletionMode)
	}
	if sp.Completions == nil || *sp.Completions != 8 || sp.Parallelism == nil || *sp.Parallelism != 3 {
		t.Errorf("completions %v, parallelism %v; want 8, 3", sp.Completions, sp.Parallelism)
	}
	if sp.BackoffLimitPerIndex == nil || *sp.BackoffLimitPerIndex != 4 {
		t.Errorf("backoffLimitPerIndex %v, want 4", sp.BackoffLimitPerIndex)
	}
	pod := sp.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %q: backoffLimitPerIndex needs Never", pod.RestartPolicy)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	if got, want := strings.Join(c.Command, " "), "thaw train --sweep "+s.Sweep+" --index $(JOB_COMPLETION_INDEX)"; got != want {
		t.Errorf("command %q, want %q", got, want)
	}
	if c.Image != "thaw:1.0" {
		t.Errorf("image %q", c.Image)
	}
	var fromSecret bool
	for _, e := range c.Env {
		if e.Name == "THAW_STORE" {
			fromSecret = e.Value == "" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil &&
				e.ValueFrom.SecretKeyRef.Name == DefaultSecret && e.ValueFrom.SecretKeyRef.Key == DefaultSecretKey
		}
	}
	if !fromSecret {
		t.Errorf("THAW_STORE is not read from the Secret %s: %+v", DefaultSecret, c.Env)
	}
	if len(pod.Volumes) != 1 || pod.Volumes[0].PersistentVolumeClaim == nil || pod.Volumes[0].PersistentVolumeClaim.ClaimName != DefaultClaim {
		t.Fatalf("volumes %+v, want the claim %s", pod.Volumes, DefaultClaim)
	}
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != s.Checkpoints || c.VolumeMounts[0].Name != pod.Volumes[0].Name {
		t.Errorf("mounts %+v, want the claim at %s", c.VolumeMounts, s.Checkpoints)
	}
	if q := c.Resources.Requests[corev1.ResourceMemory]; q.String() != "2Gi" {
		t.Errorf("memory request %s", q.String())
	}
}

// The strict decoding is strict: a misspelt field or a number where the
// API wants a list fails it.
func TestK8sStrictDecodingCatchesMistakes(t *testing.T) {
	s := testSubmission()
	s.K8s = K8s{Image: "thaw:1"}
	m, err := s.K8sManifest()
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{
		"unknown field": strings.Replace(m, "completionMode:", "completionMod:", 1),
		"wrong type":    strings.Replace(m, "completions: 8", "completions: eight", 1),
		"duplicate key": strings.Replace(m, "  parallelism:", "  completions: 8\n  parallelism:", 1),
	} {
		if bad == m {
			t.Fatalf("%s: the manifest did not change", name)
		}
		if _, err := decodeJob(t, bad); err == nil {
			t.Errorf("%s: decoded without an error", name)
		}
	}
}
