{{/*
Names, labels and the RBAC rules shared by the templates.
*/}}

{{- define "paretoscale.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name when it already contains the chart name (a release named
`paretoscale` gives `paretoscale`), else RELEASE-CHART; truncated to a DNS label.
*/}}
{{- define "paretoscale.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Name of cluster-scoped objects (ClusterRole, ClusterRoleBinding): prefixed with the release
namespace, so that releases of the same name in two namespaces do not collide.
*/}}
{{- define "paretoscale.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "paretoscale.fullname" .) }}
{{- end }}

{{- define "paretoscale.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "paretoscale.selectorLabels" -}}
app.kubernetes.io/name: {{ include "paretoscale.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "paretoscale.labels" -}}
helm.sh/chart: {{ include "paretoscale.chart" . }}
{{ include "paretoscale.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: paretoscale
{{- end }}

{{- define "paretoscale.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "paretoscale.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "paretoscale.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Where the operator finds the files the chart mounts. */}}
{{- define "paretoscale.prometheusTokenFile" -}}/var/run/secrets/paretoscale/prometheus/token{{- end }}
{{- define "paretoscale.prometheusCaDir" -}}/etc/paretoscale/prometheus-ca{{- end }}
{{- define "paretoscale.queriesFile" -}}/etc/paretoscale/queries/queries.yaml{{- end }}
{{- define "paretoscale.gpuTypesFile" -}}/etc/paretoscale/gpu-types/gpu-types.yaml{{- end }}

{{/*
Checks the schema cannot express across values; a failed check stops install/template.
*/}}
{{- define "paretoscale.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: without a leader every replica would act on the same ModelDeployments" }}
{{- end }}
{{- if and (eq .Values.prometheus.auth.type "secret") (not .Values.prometheus.auth.secret.name) }}
{{- fail "prometheus.auth.type=secret needs prometheus.auth.secret.name (a Secret in the release namespace holding the bearer token)" }}
{{- end }}
{{- $auth := .Values.prometheus.auth }}
{{- if and (eq $auth.type "serviceAccountToken") (not $auth.serviceAccountToken.audience) (not $auth.serviceAccountToken.allowNoAudience) }}
{{- fail "prometheus.auth.type=serviceAccountToken needs prometheus.auth.serviceAccountToken.audience (the audience your Prometheus auth proxy accepts, e.g. prometheus): a token without one is also a valid Kubernetes API credential of the operator. To send it anyway, set prometheus.auth.serviceAccountToken.allowNoAudience=true" }}
{{- end }}
{{- if and (ne $auth.type "none") (hasPrefix "http://" (lower .Values.prometheus.url)) (not $auth.allowInsecureHttp) }}
{{- fail (printf "prometheus.auth.type=%s sends a bearer token, and prometheus.url is plain http: use an https:// URL (with prometheus.ca.configMapName for a private CA), or set prometheus.auth.allowInsecureHttp=true to send it unencrypted" $auth.type) }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.service.enabled (the ServiceMonitor selects that Service)" }}
{{- end }}
{{- end }}

{{/*
RBAC: exactly what the operator does in a namespace it watches (operator/paretoscale/actuate/kube.py
and kopf's watches in controller/handlers.py). No Secrets, no wildcards.
*/}}
{{- define "paretoscale.namespacedRules" -}}
# The ModelDeployments it serves: kopf watches them (get: re-read after a status conflict);
# the operator never writes their spec or metadata (no finalizers, no annotations: GitOps
# owns them).
- apiGroups: [paretoscale.io]
  resources: [modeldeployments]
  verbs: [get, list, watch]
# Status: observed load, frontier, decision, rollout phase, conditions (replaced whole at a
# resourceVersion: optimistic concurrency).
- apiGroups: [paretoscale.io]
  resources: [modeldeployments/status]
  verbs: [update]
# Pods of a variant short of Ready replicas, listed by label to name those the scheduler
# cannot place (condition CapacityPending); with gpuInventory.enabled, the placed pods are
# watched for the GPUs they hold (controller/inventory.py).
- apiGroups: [""]
  resources: [pods]
  verbs: [list{{ if .Values.gpuInventory.enabled }}, watch{{ end }}]
# Owner references with blockOwnerDeletion on the Deployments and Services it creates; API
# servers with the OwnerReferencesPermissionEnforcement admission plugin (e.g. OpenShift)
# require update on the owner's finalizers for that.
- apiGroups: [paretoscale.io]
  resources: [modeldeployments/finalizers]
  verbs: [update]
# One vLLM Deployment per variant: watched (replicas, readiness), created, scaled and rolled by
# server-side apply, deleted when its variant is removed from the spec. get: before creating
# one, the operator reads whether an object of that name exists that it does not own.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
# The stable Service per ModelDeployment (server-side apply), whose selector moves at a switch;
# watched (label app.kubernetes.io/managed-by=paretoscale) so a deleted one is recreated.
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch]
# One PodDisruptionBudget per variant beside its Deployment (server-side apply), deleted with it;
# watched like the Service.
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
# core/v1 Events on ModelDeployments (decisions, switches, rollbacks); kopf's own posting is off.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
# In-cluster profiling (spec.profiling, opt-in per ModelDeployment; controller/profiling.py):
# one Job <md>-profile-<variant> at a time (server-side apply; get: whether one of that name
# exists that it does not own, and its state), deleted once its results are read.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, create, patch, delete]
# Its results ConfigMap <md>-profile-<variant>: applied empty, read, kept for GitOps users.
# update: the Job's Role grants it, and a Role may grant only what its creator holds.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, create, update, patch]
# The Job's ServiceAccount <md>-profile and its Role, limited by resourceNames to that
# ConfigMap (get, update, patch); deleted with the Job. No escalate, no bind.
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, create, patch, delete]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [get, create, patch, delete]
{{- end }}

{{/* Cluster-scoped, in either scope: kopf watches the CRDs of the resources it serves. */}}
{{- define "paretoscale.crdRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- end }}

{{/*
Cluster-scoped, in either scope, with gpuInventory.enabled: the nodes' allocatable GPUs and
whether they take pods, so the decision plans only replicas the cluster can place.
*/}}
{{- define "paretoscale.inventoryRules" -}}
{{- if .Values.gpuInventory.enabled }}
- apiGroups: [""]
  resources: [nodes]
  verbs: [list, watch]
{{- end }}
{{- end }}

{{/*
Namespace scope only: kopf lists and watches Namespaces whenever it is not cluster-wide, also
for exact names (it learns which of them exist); without it, it retries for about a minute at
start-up before it falls back to assuming they exist. Cluster-wide, it never reads Namespaces.
*/}}
{{- define "paretoscale.namespaceRules" -}}
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- end }}

{{/*
Leader election (release namespace): the operator creates its Lease once, then reads and
renews it, or takes it over when it expired (update with the resourceVersion it read).
*/}}
{{- define "paretoscale.leaseRules" -}}
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [create]
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  resourceNames: [{{ include "paretoscale.fullname" . }}]
  verbs: [get, update]
{{- end }}
