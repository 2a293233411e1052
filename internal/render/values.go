package render

import corev1 "k8s.io/api/core/v1"

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
