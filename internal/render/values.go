package render

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// resourcesValue turns ResourceRequirements into chart values with canonical quantity
// strings. What the spec leaves unset is null, which deletes the chart's default:
// Helm merges maps, and a user who sets only limits must not keep default requests.
func resourcesValue(limits, requests corev1.ResourceList) map[string]any {
	return map[string]any{"limits": quantities(limits), "requests": quantities(requests)}
}

func quantities(l corev1.ResourceList) map[string]any {
	if len(l) == 0 {
		return nil
	}
	m := make(map[string]any, len(l))
	for name, q := range l {
		m[string(name)] = q.String()
	}
	return m
}

// retentionValue turns a PVC retention policy into chart values. Only what the spec
// sets is passed: Helm merges maps, so the chart's default (Retain) fills the rest.
func retentionValue(p *appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy) map[string]any {
	if p == nil {
		return nil
	}
	v := map[string]any{}
	if p.WhenDeleted != "" {
		v["whenDeleted"] = string(p.WhenDeleted)
	}
	if p.WhenScaled != "" {
		v["whenScaled"] = string(p.WhenScaled)
	}
	if len(v) == 0 {
		return nil
	}
	return v
}
