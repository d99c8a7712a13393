package engine

import "testing"

func TestRanOn(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{nil, "box"},
		{map[string]string{"SLURM_JOB_ID": "4711"}, "box, slurm job 4711"},
		{map[string]string{"SLURM_JOB_ID": "4714", "SLURM_ARRAY_JOB_ID": "4710", "SLURM_ARRAY_TASK_ID": "3"}, "box, slurm job 4710_3"},
		{map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1", "JOB_COMPLETION_INDEX": "2"}, "pod box, index 2"},
		{map[string]string{"POD_NAME": "sweep-2-x7k2p"}, "pod sweep-2-x7k2p"},
	} {
		if got := ranOn(func(k string) string { return c.env[k] }, "box"); got != c.want {
			t.Errorf("ranOn(%v) = %q, want %q", c.env, got, c.want)
		}
	}
}
