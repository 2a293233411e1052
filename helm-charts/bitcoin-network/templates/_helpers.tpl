{{/* The StatefulSet's name; its pods are <release>-sts-<ordinal>. */}}
{{- define "bitcoin-network.statefulSetName" -}}
{{ .Release.Name }}-sts
{{- end }}

{{/* The headless Service's name; a pod's DNS name is <pod>.<release>-svc.<namespace>.svc. */}}
{{- define "bitcoin-network.serviceName" -}}
{{ .Release.Name }}-svc
{{- end }}

{{/* The NetworkPolicy's name. */}}
{{- define "bitcoin-network.networkPolicyName" -}}
{{ .Release.Name }}-netpol
{{- end }}

{{/* The chain's default RPC port. */}}
{{- define "bitcoin-network.rpcPort" -}}
{{- $ports := dict "regtest" 18443 "signet" 38332 "testnet4" 48332 -}}
{{- include "bitcoin-network.port" (list $ports .Values.chain) -}}
{{- end }}

{{/* The chain's default P2P port. */}}
{{- define "bitcoin-network.p2pPort" -}}
{{- $ports := dict "regtest" 18444 "signet" 38333 "testnet4" 48333 -}}
{{- include "bitcoin-network.port" (list $ports .Values.chain) -}}
{{- end }}

{{/*
Labels that select the network's pods. They never change for a release: the selector
of a StatefulSet is immutable.
*/}}
{{- define "bitcoin-network.selectorLabels" -}}
app.kubernetes.io/name: bitcoin-network
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of the pods: stable across chart and operator versions, so that an upgrade does
not roll every node. app.kubernetes.io/managed-by is the managedBy value, which the
operator sets to "bitcoin-operator" and its caches select on; "Helm" otherwise.
*/}}
{{- define "bitcoin-network.podLabels" -}}
{{ include "bitcoin-network.selectorLabels" . }}
app.kubernetes.io/component: bitcoind
app.kubernetes.io/managed-by: {{ .Values.managedBy | default .Release.Service }}
{{- end }}

{{/* Labels of the StatefulSet and the Service: the pods' plus the versions. */}}
{{- define "bitcoin-network.labels" -}}
{{ include "bitcoin-network.podLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{/* Looks a chain up in a dict of ports: (list $ports $chain). */}}
{{- define "bitcoin-network.port" -}}
{{- $port := get (index . 0) (index . 1) -}}
{{- if not $port }}{{ fail (printf "chain %q is not one of regtest, signet, testnet4" (index . 1)) }}{{ end -}}
{{ $port }}
{{- end }}
