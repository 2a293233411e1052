package cluster

import (
	"os"
	"path/filepath"
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
// Running and Ready (after delay) unless their image is broken, and go when deleted.
func writeStages(dir string, podReadyDelay time.Duration) (string, error) {
	var podReady map[string]any
	if err := yaml.Unmarshal([]byte(podfast.DefaultPodReady), &podReady); err != nil {
		return "", err
	}
	spec := podReady["spec"].(map[string]any)
	if podReadyDelay > 0 {
		spec["delay"] = map[string]any{"durationMilliseconds": podReadyDelay.Milliseconds()}
	}
	// A broken image never runs: only podImagePullBackOff may take such a pod.
	selector := spec["selector"].(map[string]any)
	selector["matchExpressions"] = append(selector["matchExpressions"].([]any),
		map[string]any{"key": brokenImage, "operator": "DoesNotExist"})
	ready, err := yaml.Marshal(podReady)
	if err != nil {
		return "", err
	}
	docs := []string{fast.DefaultNodeInit, heartbeat.DefaultNodeHeartbeatWithLease, string(ready),
		podImagePullBackOff, podReadyAgain, podfast.DefaultPodComplete, podfast.DefaultPodDelete}
	path := filepath.Join(dir, "kwok-stages.yaml")
	return path, os.WriteFile(path, []byte(strings.Join(docs, "\n---\n")), 0o644)
}

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
      {{ $now := Now }}
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
