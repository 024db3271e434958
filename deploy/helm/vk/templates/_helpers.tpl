{{/* The chart's name. */}}
{{- define "vk.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the release name, with the chart's unless it contains it. */}}
{{- define "vk.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "vk.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vk.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "vk.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "vk.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: virtual-kubelet
{{- end }}

{{- define "vk.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "vk.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* "true" when leader election is on: asked for, or by default with more than one replica. */}}
{{- define "vk.leaderElection" -}}
{{- if kindIs "bool" .Values.leaderElection.enabled }}
{{- .Values.leaderElection.enabled }}
{{- else }}
{{- gt (int .Values.replicas) 1 }}
{{- end }}
{{- end }}

{{/* The election's Lease: vk's default name for the node. */}}
{{- define "vk.leaseName" -}}
vk-{{ .Values.nodeName }}
{{- end }}

{{/* The Secret and key of the provider's configuration, if any. */}}
{{- define "vk.providerConfigSecret" -}}
{{- if .Values.providerConfig }}
{{- printf "%s-provider" (include "vk.fullname" .) }}
{{- else }}
{{- .Values.providerConfigSecret.name }}
{{- end }}
{{- end }}

{{- define "vk.checks" -}}
{{- if and .Values.providerConfig .Values.providerConfigSecret.name }}
{{- fail "set providerConfig or providerConfigSecret.name, not both" }}
{{- end }}
{{- if and (gt (int .Values.replicas) 1) (ne (include "vk.leaderElection" .) "true") }}
{{- fail "replicas > 1 needs leader election: two vks acting for one node would fight over it" }}
{{- end }}
{{- if and (eq .Values.tls.mode "bootstrap") (eq (include "vk.leaderElection" .) "true") }}
{{- fail "tls.mode bootstrap gives vk node credentials, which NodeRestriction keeps from the election's Lease: use selfSigned or secret with leader election" }}
{{- end }}
{{- if and (eq .Values.tls.mode "secret") (not .Values.tls.secretName) }}
{{- fail "tls.mode secret needs tls.secretName" }}
{{- end }}
{{- if and (eq .Values.tls.mode "bootstrap") (not .Values.tls.bootstrapSecret) }}
{{- fail "tls.mode bootstrap needs tls.bootstrapSecret" }}
{{- end }}
{{- end }}
