package engine

import (
	"os"
	"strings"
)

// ranOn describes where this process trains, for [store.Run.RanOn]: the
// host name, and the scheduler's job when the process is one of its
// tasks. getenv is os.Getenv but in tests.
//
//   - Slurm: "node12, slurm job 4711", or for a task of an array job
//     "node12, slurm job 4710_3" (the array's job id and the task id);
//   - Kubernetes: "pod thaw-sweep-3-x7k2p, index 3": the pod's name is its
//     host name unless POD_NAME says otherwise (the downward API), and
//     JOB_COMPLETION_INDEX is an Indexed Job's index.
func ranOn(getenv func(string) string, host string) string {
	if host == "" {
		host = "unknown host"
	}
	if array, task := getenv("SLURM_ARRAY_JOB_ID"), getenv("SLURM_ARRAY_TASK_ID"); array != "" && task != "" {
		return host + ", slurm job " + array + "_" + task
	}
	if job := getenv("SLURM_JOB_ID"); job != "" {
		return host + ", slurm job " + job
	}
	if getenv("KUBERNETES_SERVICE_HOST") != "" || getenv("POD_NAME") != "" {
		pod := getenv("POD_NAME")
		if pod == "" {
			pod = host
		}
		s := "pod " + pod
		if i := getenv("JOB_COMPLETION_INDEX"); i != "" {
			s += ", index " + i
		}
		return s
	}
	return host
}

// thisHost is where this process's runs train, as ranOn says it.
var thisHost = func() string {
	h, _ := os.Hostname()
	return strings.TrimSpace(ranOn(os.Getenv, h))
}()
