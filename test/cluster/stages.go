package cluster

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/kwok/kustomize/stage/node/fast"
	heartbeat "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat-with-lease"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
	"sigs.k8s.io/yaml"
)

// BrokenTag marks an image that cannot be pulled: kwok puts a pod with a container of
// an image tagged so (e.g. "bitcoin/bitcoin:broken") into ImagePullBackOff, and never
// makes it Running, as a kubelet would for a tag that does not exist. A real kubelet
// has no such marker; a test picks the image that fails.
const BrokenTag = "broken"

// brokenImage is a kwok query that yields something for a pod with such a container.
const brokenImage = `.spec.containers.[] | select(.image | endswith(":` + BrokenTag + `")) | .name`

// podImagePullBackOff is a Stage of this project's: a Pending pod with a broken image
// gets a container status waiting in ImagePullBackOff, not ready since now, and stays
// Pending. It matches once: afterwards the pod has container statuses.
const podImagePullBackOff = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-image-pull-backoff
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Pending'
    - key: '` + brokenImage + `'
      operator: 'Exists'
    - key: '.status.containerStatuses'
      operator: 'DoesNotExist'
  next:
    statusTemplate: |
      {{ $now := Now }}

      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        reason: ContainersNotReady
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        reason: ContainersNotReady
        type: ContainersReady

      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        imageID: ""
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          waiting:
            reason: ImagePullBackOff
            message: {{ printf "Back-off pulling image %q" .image | Quote }}
      {{ end }}
      phase: Pending
`

// writeStages writes kwok's stages: Nodes turn Ready and keep their leases, pods turn
// Running and Ready unless their image is broken, and go when deleted. With a delay, a
// pod runs with its IP first and turns Ready delay later, as a kubelet's readiness
// probe makes it: a double listening on the IP is up before the pod is Ready, as
// bitcoind's RPC is when its probe passes.
func writeStages(dir string, podReadyDelay time.Duration) (string, error) {
	var podReady map[string]any
	if err := yaml.Unmarshal([]byte(podfast.DefaultPodReady), &podReady); err != nil {
		return "", err
	}
	spec := podReady["spec"].(map[string]any)
	// A broken image never runs: only podImagePullBackOff may take such a pod.
	selector := spec["selector"].(map[string]any)
	selector["matchExpressions"] = append(selector["matchExpressions"].([]any),
		map[string]any{"key": brokenImage, "operator": "DoesNotExist"})
	docs := []string{fast.DefaultNodeInit, heartbeat.DefaultNodeHeartbeatWithLease}
	if podReadyDelay > 0 {
		next := spec["next"].(map[string]any)
		next["statusTemplate"] = notReadyYet(next["statusTemplate"].(string))
		podReady["metadata"] = map[string]any{"name": "pod-running"}
		docs = append(docs, strings.ReplaceAll(podReadyLater, "DELAY_MS", strconv.FormatInt(podReadyDelay.Milliseconds(), 10)))
	}
	ready, err := yaml.Marshal(podReady)
	if err != nil {
		return "", err
	}
	docs = append(docs, string(ready), podImagePullBackOff, podReadyAgain, podfast.DefaultPodComplete, podfast.DefaultPodDelete)
	path := filepath.Join(dir, "kwok-stages.yaml")
	return path, os.WriteFile(path, []byte(strings.Join(docs, "\n---\n")), 0o644)
}

// notReadyYet turns kwok's pod-ready status into a running pod whose containers are
// not ready yet.
func notReadyYet(template string) string {
	for _, t := range []string{"Ready", "ContainersReady"} {
		template = strings.Replace(template, "status: \"True\"\n  type: "+t+"\n",
			"status: \"False\"\n  reason: ContainersNotReady\n  type: "+t+"\n", 1)
	}
	return strings.Replace(template, "ready: true\n  restartCount: 0\n  state:\n    running:", "ready: false\n  restartCount: 0\n  state:\n    running:", 1)
}

// readyConditions is the start of a status template that makes a pod Ready: its
// conditions, all True since now.
const readyConditions = `      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: ContainersReady
`

// podReadyLater is a Stage of this project's: a running pod whose containers are not
// ready turns Ready after a delay. A pod the node lifecycle controller marked not ready
// keeps ContainersReady True, and is podReadyAgain's.
const podReadyLater = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready-later
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.status.conditions.[] | select( .type == "ContainersReady" ) | .status'
      operator: 'In'
      values: ['False']
  delay:
    durationMilliseconds: DELAY_MS
  next:
    statusTemplate: |
` + readyConditions + `      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
`

// podReadyAgain plays the kubelet reporting its pods again once its Node is back: the
// node lifecycle controller marks a pod not ready (Ready False, its containers still
// ready) when the Node's Lease goes unrenewed, as it does for every Node while the API
// server is away, and a kubelet then reports the truth; kwok's own stages never
// revisit a running pod.
const podReadyAgain = `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready-again
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'In'
      values: ['False']
    - key: '.status.conditions.[] | select( .type == "ContainersReady" ) | .status'
      operator: 'In'
      values: ['True']
  next:
    statusTemplate: |
` + readyConditions
