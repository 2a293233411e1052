package render

import corev1 "k8s.io/api/core/v1"

// resourcesValue turns ResourceRequirements into chart values with canonical quantity
// strings, leaving out what is unset.
func resourcesValue(limits, requests corev1.ResourceList) map[string]any {
	v := map[string]any{}
	if len(limits) > 0 {
		v["limits"] = quantities(limits)
	}
	if len(requests) > 0 {
		v["requests"] = quantities(requests)
	}
	return v
}

func quantities(l corev1.ResourceList) map[string]any {
	m := make(map[string]any, len(l))
	for name, q := range l {
		m[string(name)] = q.String()
	}
	return m
}
