package printers

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// noWide appends the four wide pod cells of a pod without IP, node, nominated node or
// readiness gates. Upstream's non-wide tests stop after Age.
func noWide(cells ...any) []any {
	return append(cells, "<none>", "<none>", "<none>", "<none>")
}

func running() corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
}

func waiting(reason string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
}

func terminated(reason string, exitCode int32) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: exitCode}}
}

// crashed is upstream's "podCrash" terminated state (exit code 1).
func crashed() corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(now), ExitCode: 1, Reason: "podCrash"}}
}

// finishedAgo is a last termination state that finished d before now.
func finishedAgo(d time.Duration) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: ago(d)}}
}

func TestPodCells(t *testing.T) {
	deleteTime := ago(10 * time.Second)
	always := corev1.ContainerRestartPolicyAlways
	tests := []struct {
		name string
		pod  corev1.Pod
		want []any
	}{
		{
			name: "upstream TestPrintPod test1: ready count and restarts",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test1"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
				Status: corev1.PodStatus{Phase: "podPhase", ContainerStatuses: []corev1.ContainerStatus{
					{Ready: true, RestartCount: 3, State: running()},
					{RestartCount: 3},
				}},
			},
			want: noWide("test1", "1/2", "podPhase", "6", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test2: container waiting reason overrides phase",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test2"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
				Status: corev1.PodStatus{Phase: "podPhase", ContainerStatuses: []corev1.ContainerStatus{
					{Ready: true, RestartCount: 3, State: running()},
					{State: waiting("ContainerWaitingReason"), RestartCount: 3},
				}},
			},
			want: noWide("test2", "1/2", "ContainerWaitingReason", "6", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test3: first container's reason wins",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test3"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
				Status: corev1.PodStatus{Phase: "podPhase", ContainerStatuses: []corev1.ContainerStatus{
					{State: waiting("ContainerWaitingReason"), RestartCount: 3},
					{State: terminated("ContainerTerminatedReason", 0), RestartCount: 3},
				}},
			},
			want: noWide("test3", "0/2", "ContainerWaitingReason", "6", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test4: ready is not enough for running",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test4"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
				Status: corev1.PodStatus{Phase: "podPhase", ContainerStatuses: []corev1.ContainerStatus{
					{Ready: true, RestartCount: 3, State: running()},
					{Ready: true, RestartCount: 3},
				}},
			},
			want: noWide("test4", "1/2", "podPhase", "6", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test5: pod reason overrides phase",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test5"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
				Status: corev1.PodStatus{Reason: "podReason", Phase: "podPhase", ContainerStatuses: []corev1.ContainerStatus{
					{Ready: true, RestartCount: 3, State: running()},
					{Ready: true, RestartCount: 3},
				}},
			},
			want: noWide("test5", "1/2", "podReason", "6", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test6: completed plus running without Ready condition",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test6"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
				Status: corev1.PodStatus{Phase: "Running", ContainerStatuses: []corev1.ContainerStatus{
					{Ready: true, RestartCount: 3, State: terminated("Completed", 0)},
					{Ready: true, RestartCount: 3, State: running()},
				}},
			},
			want: noWide("test6", "1/2", "NotReady", "6", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test6: completed plus running with Ready condition",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test6"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
				Status: corev1.PodStatus{
					Phase: "Running",
					ContainerStatuses: []corev1.ContainerStatus{
						{Ready: true, RestartCount: 3, State: terminated("Completed", 0)},
						{Ready: true, RestartCount: 3, State: running()},
					},
					Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastProbeTime: metav1.NewTime(now)}},
				},
			},
			want: noWide("test6", "1/2", "Running", "6", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test7: init container restarting",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test7"},
				Spec:       corev1.PodSpec{InitContainers: make([]corev1.Container, 1), Containers: make([]corev1.Container, 1)},
				Status: corev1.PodStatus{
					Phase:                 "podPhase",
					InitContainerStatuses: []corev1.ContainerStatus{{RestartCount: 3, State: running(), LastTerminationState: finishedAgo(10 * time.Second)}},
					ContainerStatuses:     []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}}},
				},
			},
			want: noWide("test7", "0/1", "Init:0/1", "3 (10s ago)", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test8: first of two init containers restarting",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test8"},
				Spec:       corev1.PodSpec{InitContainers: make([]corev1.Container, 2), Containers: make([]corev1.Container, 1)},
				Status: corev1.PodStatus{
					Phase: "podPhase",
					InitContainerStatuses: []corev1.ContainerStatus{
						{RestartCount: 3, State: running(), LastTerminationState: finishedAgo(10 * time.Second)},
						{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}},
					},
					ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}}},
				},
			},
			want: noWide("test8", "0/1", "Init:0/2", "3 (10s ago)", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test9: first init container done, second restarting",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test9"},
				Spec:       corev1.PodSpec{InitContainers: make([]corev1.Container, 2), Containers: make([]corev1.Container, 1)},
				Status: corev1.PodStatus{
					Phase: "podPhase",
					InitContainerStatuses: []corev1.ContainerStatus{
						{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}},
						{RestartCount: 3, State: running(), LastTerminationState: finishedAgo(10 * time.Second)},
					},
					ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}}},
				},
			},
			want: noWide("test9", "0/1", "Init:1/2", "3 (10s ago)", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test10: restarts of both init containers add up",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test10"},
				Spec:       corev1.PodSpec{InitContainers: make([]corev1.Container, 2), Containers: make([]corev1.Container, 1)},
				Status: corev1.PodStatus{
					Phase: "podPhase",
					InitContainerStatuses: []corev1.ContainerStatus{
						{RestartCount: 2, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}, LastTerminationState: finishedAgo(2 * time.Minute)},
						{RestartCount: 3, State: running(), LastTerminationState: finishedAgo(10 * time.Second)},
					},
					ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}}},
				},
			},
			want: noWide("test10", "0/1", "Init:1/2", "5 (10s ago)", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test11: initialized pod counts only app container restarts",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test11"},
				Spec:       corev1.PodSpec{InitContainers: make([]corev1.Container, 1), Containers: make([]corev1.Container, 1)},
				Status: corev1.PodStatus{
					Phase:                 "Running",
					InitContainerStatuses: []corev1.ContainerStatus{{RestartCount: 2, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}, LastTerminationState: finishedAgo(2 * time.Minute)}},
					ContainerStatuses:     []corev1.ContainerStatus{{RestartCount: 4, State: running(), LastTerminationState: finishedAgo(20 * time.Second)}},
				},
			},
			want: noWide("test11", "0/1", "Running", "4 (20s ago)", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test12: restarted 5d ago",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test12"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 1)},
				Status: corev1.PodStatus{Phase: "Running", ContainerStatuses: []corev1.ContainerStatus{
					{Ready: true, RestartCount: 3, State: running(), LastTerminationState: finishedAgo(5 * 24 * time.Hour)},
				}},
			},
			want: noWide("test12", "1/1", "Running", "3 (5d ago)", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test13: one container never restarted",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test13"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
				Status: corev1.PodStatus{Phase: "Running", ContainerStatuses: []corev1.ContainerStatus{
					{Ready: true, State: running()},
					{Ready: true, RestartCount: 3, State: running(), LastTerminationState: finishedAgo(10 * 24 * time.Hour)},
				}},
			},
			want: noWide("test13", "2/2", "Running", "3 (10d ago)", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test14: the most recent restart is shown",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test14"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
				Status: corev1.PodStatus{Phase: "Running", ContainerStatuses: []corev1.ContainerStatus{
					{Ready: true, RestartCount: 6, State: running(), LastTerminationState: finishedAgo(5 * 24 * time.Hour)},
					{Ready: true, RestartCount: 3, State: running(), LastTerminationState: finishedAgo(20 * 24 * time.Hour)},
				}},
			},
			want: noWide("test14", "2/2", "Running", "9 (5d ago)", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test15: scheduling gated",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test15"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
				Status: corev1.PodStatus{Phase: "podPhase", Conditions: []corev1.PodCondition{
					{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated},
				}},
			},
			want: noWide("test15", "0/2", "SchedulingGated", "0", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test16: succeeded",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test16"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 1)},
				Status:     corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{State: terminated("Completed", 0)}}},
			},
			want: noWide("test16", "0/1", "Completed", "0", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test17: failed",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test17"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 1)},
				Status:     corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{{State: terminated("Error", 1)}}},
			},
			want: noWide("test17", "0/1", "Error", "0", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test18: succeeded pod being deleted is not Terminating",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test18", DeletionTimestamp: &deleteTime},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 1)},
				Status:     corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{State: terminated("Completed", 0)}}},
			},
			want: noWide("test18", "0/1", "Completed", "0", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test19: running pod being deleted",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test19", DeletionTimestamp: &deleteTime},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 1)},
				Status:     corev1.PodStatus{Phase: "Running", ContainerStatuses: []corev1.ContainerStatus{{State: running()}}},
			},
			want: noWide("test19", "0/1", "Terminating", "0", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test20: pending pod being deleted",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test20", DeletionTimestamp: &deleteTime},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 1)},
				Status:     corev1.PodStatus{Phase: "Pending"},
			},
			want: noWide("test20", "0/1", "Terminating", "0", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test21: error then running container (kubernetes#107713)",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test21"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
				Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{
					{State: crashed()},
					{Ready: true, State: running()},
				}},
			},
			want: noWide("test21", "1/2", "podCrash", "0", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test22: running then error container",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test22"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
				Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{
					{Ready: true, State: running()},
					{State: crashed()},
				}},
			},
			want: noWide("test22", "1/2", "podCrash", "0", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test23: ready running, error, completed",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test23"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 3)},
				Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{
					{Ready: true, State: running()},
					{Ready: true, State: crashed()},
					{Ready: true, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(now)}}},
				}},
			},
			want: noWide("test23", "1/3", "podCrash", "0", "<unknown>"),
		},
		{
			name: "upstream TestPrintPod test24: not ready running, error, completed",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test24"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 3)},
				Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{
					{State: running()},
					{State: crashed()},
					{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(now)}}},
				}},
			},
			want: noWide("test24", "0/3", "podCrash", "0", "<unknown>"),
		},
		{
			name: "completed first container, another failed, none running: the failure wins",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "mixed"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
				Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{
					{State: terminated("Completed", 0)},
					{State: terminated("OOMKilled", 137)},
				}},
			},
			want: noWide("mixed", "0/2", "OOMKilled", "0", "<unknown>"),
		},
		{
			name: "upstream TestPrintNonTerminatedPod test3: phase Unknown",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test3"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
				Status: corev1.PodStatus{Phase: corev1.PodUnknown, ContainerStatuses: []corev1.ContainerStatus{
					{Ready: true, RestartCount: 3, State: running()},
					{RestartCount: 3},
				}},
			},
			want: noWide("test3", "1/2", "Unknown", "6", "<unknown>"),
		},
		{
			name: "upstream TestPrintPodWithRestartableInitContainer test1: sidecar running, not started",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test1"},
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{Name: "restartable-init-1", RestartPolicy: &always}, {Name: "restartable-init-2", RestartPolicy: &always}},
					Containers:     make([]corev1.Container, 1),
				},
				Status: corev1.PodStatus{
					Phase: "Pending",
					InitContainerStatuses: []corev1.ContainerStatus{
						{Name: "restartable-init-1", RestartCount: 3, State: running(), Started: ptr.To(false), LastTerminationState: finishedAgo(10 * time.Second)},
						{Name: "restartable-init-2", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}, Started: ptr.To(false)},
					},
					ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}}},
					Conditions:        []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionFalse}},
				},
			},
			want: noWide("test1", "0/3", "Init:0/2", "3 (10s ago)", "<unknown>"),
		},
		{
			name: "upstream TestPrintPodWithRestartableInitContainer test1: first sidecar started",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test1"},
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{Name: "restartable-init-1", RestartPolicy: &always}, {Name: "restartable-init-2", RestartPolicy: &always}},
					Containers:     make([]corev1.Container, 1),
				},
				Status: corev1.PodStatus{
					Phase: "Pending",
					InitContainerStatuses: []corev1.ContainerStatus{
						{Name: "restartable-init-1", RestartCount: 3, State: running(), Started: ptr.To(true), LastTerminationState: finishedAgo(10 * time.Second)},
						{Name: "restartable-init-2", State: running(), Started: ptr.To(false)},
					},
					ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}}},
					Conditions:        []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionFalse}},
				},
			},
			want: noWide("test1", "0/3", "Init:1/2", "3 (10s ago)", "<unknown>"),
		},
		{
			name: "upstream TestPrintPodWithRestartableInitContainer test2: sidecars started, app running",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test2"},
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{Name: "restartable-init-1", RestartPolicy: &always}, {Name: "restartable-init-2", RestartPolicy: &always}},
					Containers:     make([]corev1.Container, 1),
				},
				Status: corev1.PodStatus{
					Phase: "Running",
					InitContainerStatuses: []corev1.ContainerStatus{
						{Name: "restartable-init-1", RestartCount: 3, State: running(), Started: ptr.To(true), LastTerminationState: finishedAgo(10 * time.Second)},
						{Name: "restartable-init-2", State: running(), Started: ptr.To(true)},
					},
					ContainerStatuses: []corev1.ContainerStatus{{Ready: true, RestartCount: 4, State: running(), LastTerminationState: finishedAgo(20 * time.Second)}},
					Conditions:        []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}},
				},
			},
			want: noWide("test2", "1/3", "Running", "7 (10s ago)", "<unknown>"),
		},
		{
			name: "upstream TestPrintPodWithRestartableInitContainer test3: sidecars killed, app completed",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test3"},
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{Name: "restartable-init-1", RestartPolicy: &always}, {Name: "restartable-init-2", RestartPolicy: &always}},
					Containers:     make([]corev1.Container, 1),
				},
				Status: corev1.PodStatus{
					Phase: "Succeeded",
					InitContainerStatuses: []corev1.ContainerStatus{
						{Name: "restartable-init-1", RestartCount: 3, State: terminated("Error", 137), Started: ptr.To(false), LastTerminationState: finishedAgo(10 * time.Second)},
						{Name: "restartable-init-2", State: terminated("Error", 137), Started: ptr.To(false)},
					},
					ContainerStatuses: []corev1.ContainerStatus{{RestartCount: 4, State: terminated("Completed", 0), LastTerminationState: finishedAgo(20 * time.Second)}},
					Conditions:        []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}},
				},
			},
			want: noWide("test3", "0/3", "Completed", "7 (10s ago)", "<unknown>"),
		},
		{
			name: "upstream TestPrintPodWithRestartableInitContainer test4: statuses for unknown containers",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test4"},
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{
						{Name: "init1", Image: "initimage"},
						{Name: "sidecar1", Image: "sidecarimage", RestartPolicy: &always},
					},
					Containers: []corev1.Container{{Name: "container1", Image: "containerimage"}},
				},
				Status: corev1.PodStatus{
					Phase:                 "Running",
					InitContainerStatuses: []corev1.ContainerStatus{{Name: "initinvalid"}, {Name: "init1"}, {Name: "sidecar1"}},
					ContainerStatuses:     []corev1.ContainerStatus{{Name: "containerinvalid"}, {Name: "container1"}},
				},
			},
			want: noWide("test4", "0/2", "Init:0/2", "0", "<unknown>"),
		},
		{
			name: "upstream TestPrintPodwide test1: IP, node, nominated node, readiness gates",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test1"},
				Spec: corev1.PodSpec{
					Containers: make([]corev1.Container, 2),
					NodeName:   "test1",
					ReadinessGates: []corev1.PodReadinessGate{
						{ConditionType: "condition1"}, {ConditionType: "condition2"}, {ConditionType: "condition3"},
					},
				},
				Status: corev1.PodStatus{
					Conditions: []corev1.PodCondition{
						{Type: "condition1", Status: corev1.ConditionFalse},
						{Type: "condition2", Status: corev1.ConditionTrue},
					},
					Phase:  "podPhase",
					PodIPs: []corev1.PodIP{{IP: "1.1.1.1"}, {IP: "2001:db8::"}},
					ContainerStatuses: []corev1.ContainerStatus{
						{Ready: true, RestartCount: 3, State: running()},
						{RestartCount: 3},
					},
					NominatedNodeName: "node1",
				},
			},
			want: []any{"test1", "1/2", "podPhase", "6", "<unknown>", "1.1.1.1", "test1", "node1", "1/3"},
		},
		// Cases below are not in upstream's tests; their expectations follow printPod's code.
		{
			name: "CrashLoopBackOff shows the waiting reason and the last restart",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "crash", CreationTimestamp: ago(10 * time.Minute)},
				Spec:       corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "app"}}},
				Status: corev1.PodStatus{
					Phase:  corev1.PodRunning,
					PodIP:  "10.244.0.7",
					PodIPs: []corev1.PodIP{{IP: "10.244.0.7"}},
					ContainerStatuses: []corev1.ContainerStatus{{
						Name: "app", RestartCount: 5, State: waiting("CrashLoopBackOff"),
						LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", FinishedAt: ago(90 * time.Second)}},
					}},
				},
			},
			want: []any{"crash", "0/1", "CrashLoopBackOff", "5 (90s ago)", "10m", "10.244.0.7", "node-a", "<none>", "<none>"},
		},
		{
			name: "init container failed with a reason",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "initfail"},
				Spec:       corev1.PodSpec{InitContainers: make([]corev1.Container, 1), Containers: make([]corev1.Container, 1)},
				Status: corev1.PodStatus{
					Phase:                 corev1.PodPending,
					InitContainerStatuses: []corev1.ContainerStatus{{State: terminated("Error", 2)}},
				},
			},
			want: noWide("initfail", "0/1", "Init:Error", "0", "<unknown>"),
		},
		{
			name: "init container killed by a signal without a reason",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "initsig"},
				Spec:       corev1.PodSpec{InitContainers: make([]corev1.Container, 1), Containers: make([]corev1.Container, 1)},
				Status: corev1.PodStatus{
					Phase:                 corev1.PodPending,
					InitContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Signal: 9}}}},
				},
			},
			want: noWide("initsig", "0/1", "Init:Signal:9", "0", "<unknown>"),
		},
		{
			name: "init container waiting on an image pull",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "initpull"},
				Spec:       corev1.PodSpec{InitContainers: make([]corev1.Container, 2), Containers: make([]corev1.Container, 1)},
				Status: corev1.PodStatus{
					Phase: corev1.PodPending,
					InitContainerStatuses: []corev1.ContainerStatus{
						{State: waiting("ImagePullBackOff")},
						{State: waiting("PodInitializing")},
					},
				},
			},
			want: noWide("initpull", "0/1", "Init:ImagePullBackOff", "0", "<unknown>"),
		},
		{
			name: "app container exited without a reason",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "exit"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 1)},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
					{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3}}},
				}},
			},
			want: noWide("exit", "0/1", "ExitCode:3", "0", "<unknown>"),
		},
		{
			name: "pod of a lost node being deleted shows Unknown",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "lost", DeletionTimestamp: &deleteTime},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 1)},
				Status:     corev1.PodStatus{Phase: corev1.PodRunning, Reason: "NodeLost"},
			},
			want: noWide("lost", "0/1", "Unknown", "0", "<unknown>"),
		},
		{
			name: "pod of a lost node not yet deleted shows NodeLost",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "lost"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 1)},
				Status:     corev1.PodStatus{Phase: corev1.PodRunning, Reason: "NodeLost"},
			},
			want: noWide("lost", "0/1", "NodeLost", "0", "<unknown>"),
		},
		{
			name: "status.podIP is authoritative over podIPs (v1 to internal conversion)",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "ips"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 1)},
				Status:     corev1.PodStatus{Phase: corev1.PodPending, PodIP: "10.0.0.9", PodIPs: []corev1.PodIP{{IP: "10.0.0.8"}}},
			},
			want: []any{"ips", "0/1", "Pending", "0", "<unknown>", "10.0.0.9", "<none>", "<none>", "<none>"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := cellsFor(t, gr("", "pods"), &tc.pod)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("cells (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPodConditions is upstream TestPrintPodConditions: finished pods carry a Completed row
// condition.
func TestPodConditions(t *testing.T) {
	tests := []struct {
		name  string
		phase corev1.PodPhase
		want  []metav1.TableRowCondition
	}{
		{name: "running has none", phase: corev1.PodRunning, want: nil},
		{name: "succeeded", phase: corev1.PodSucceeded, want: []metav1.TableRowCondition{
			{Type: metav1.RowCompleted, Status: metav1.ConditionTrue, Reason: "Succeeded", Message: "The pod has completed successfully."},
		}},
		{name: "failed", phase: corev1.PodFailed, want: []metav1.TableRowCondition{
			{Type: metav1.RowCompleted, Status: metav1.ConditionTrue, Reason: "Failed", Message: "The pod failed."},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "test1"},
				Spec:       corev1.PodSpec{Containers: make([]corev1.Container, 2)},
				Status:     corev1.PodStatus{Phase: tc.phase},
			}
			row, err := For(gr("", "pods")).Row(pod, now)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, row.Conditions); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
			if row.Cells[2] != string(tc.phase) {
				t.Errorf("status cell = %v, want %s", row.Cells[2], tc.phase)
			}
		})
	}
}
