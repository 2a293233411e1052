package v1alpha1

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Chain is the Bitcoin chain a network runs.
// +kubebuilder:validation:Enum=regtest;signet;testnet4
type Chain string

const (
	// Regtest is a private chain whose blocks the network mines itself.
	Regtest Chain = "regtest"
	// Signet is the public signet test chain.
	Signet Chain = "signet"
	// Testnet4 is the public test chain of Bitcoin Core 28 and later.
	Testnet4 Chain = "testnet4"
)

// DefaultImage is the Bitcoin Core image a network runs unless spec.image or the
// operator's RelatedImageEnvVar says otherwise. Keep it in step with the chart's
// values.yaml and config/manager's RELATED_IMAGE_BITCOIN_CORE.
const DefaultImage = "bitcoin/bitcoin:28.1"

// RelatedImageEnvVar is the operator's environment variable that names the default
// Bitcoin Core image, as OLM and the Operator SDK expect of images an operator
// deploys: a mirror for a disconnected cluster rewrites it. Not a CRD default, which
// would fill spec.image before the operator saw it and leave the variable dead.
const RelatedImageEnvVar = "RELATED_IMAGE_BITCOIN_CORE"

// BitcoinNetworkSpec is the network the user asks for.
// +kubebuilder:validation:XValidation:rule="self.chain == 'regtest' || (!has(self.mining) && (!has(self.partitions) || size(self.partitions) == 0))",message="spec.mining and spec.partitions are for regtest only: on signet and testnet4 public peers would connect anyway"
type BitcoinNetworkSpec struct {
	// Nodes is the number of bitcoind nodes. 0 keeps the network's objects but runs no node.
	// At most 1000: status.nodes then takes about a quarter of an object's 1.5 MiB
	// (docs/scale.md). The operator's --max-nodes-per-network may cap it lower.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +required
	// +operator-sdk:csv:customresourcedefinitions:type=spec,displayName="Nodes",xDescriptors={"urn:alm:descriptor:com.tectonic.ui:podCount"}
	Nodes int32 `json:"nodes"`

	// Secret is the name of a Secret in the network's namespace that holds the nodes' RPC
	// credentials, of type kubernetes.io/basic-auth with the keys username and password.
	// The username must not contain ':'. When unset, the operator generates random
	// credentials into a Secret of its own, <name>-rpc-credentials, which goes with the
	// network. Changing the credentials rolls the nodes onto them.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=spec,displayName="RPC credentials Secret",xDescriptors={"urn:alm:descriptor:io.kubernetes:Secret"}
	Secret string `json:"secret,omitempty"`

	// Image is the Bitcoin Core container image. It must have bitcoind and bitcoin-cli on its
	// PATH; the nodes run as UID and GID 101. It is an image reference,
	// [registry[:port]/]path[:tag][@digest], of at most 512 characters. When unset, the
	// operator's default (bitcoin/bitcoin:28.1 unless its RELATED_IMAGE_BITCOIN_CORE says
	// otherwise) when the network is created; status.image records it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule=`self.matches('^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?([.][a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*(:[0-9]+)?/)?[a-z0-9]+(([._]|__|[-]+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|[-]+)[a-z0-9]+)*)*(:[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127})?(@[a-zA-Z][a-zA-Z0-9]*([-_+.][a-zA-Z][a-zA-Z0-9]*)*:[0-9a-fA-F]{32,})?$')`,message="image must be an image reference: [registry[:port]/]path[:tag][@digest], e.g. bitcoin/bitcoin:28.1"
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=spec,displayName="Image",xDescriptors={"urn:alm:descriptor:com.tectonic.ui:text","urn:alm:descriptor:com.tectonic.ui:advanced"}
	Image string `json:"image,omitempty"`

	// Chain is the Bitcoin chain the nodes run: regtest, signet or testnet4. It cannot be
	// changed once set.
	// +kubebuilder:default=regtest
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="chain is immutable: create a new network for another chain"
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=spec,displayName="Chain",xDescriptors={"urn:alm:descriptor:com.tectonic.ui:select:regtest","urn:alm:descriptor:com.tectonic.ui:select:signet","urn:alm:descriptor:com.tectonic.ui:select:testnet4"}
	Chain Chain `json:"chain,omitempty"`

	// Resources are the bitcoind container's compute resources. When unset, each node
	// requests 100m CPU and 256Mi memory.
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=spec,displayName="Resources",xDescriptors={"urn:alm:descriptor:com.tectonic.ui:resourceRequirements","urn:alm:descriptor:com.tectonic.ui:advanced"}
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// Storage is the size of each node's persistent volume for its data directory. The 1Gi
	// default suits regtest; signet and testnet4 need several gigabytes. It cannot be changed
	// once set: a StatefulSet's volume claim templates are immutable.
	// It must be more than 0 and at most 1Ti, far more than any chain this operator runs
	// needs: a larger value is a typo that would claim a disk no cluster has.
	// +kubebuilder:default="1Gi"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="storage is immutable: the StatefulSet's volume claim templates cannot change"
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="storage must be a positive quantity, e.g. 1Gi"
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).compareTo(quantity('1Ti')) <= 0",message="storage must be at most 1Ti"
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=spec,displayName="Storage per node",xDescriptors={"urn:alm:descriptor:com.tectonic.ui:text"}
	Storage *resource.Quantity `json:"storage,omitempty"`

	// PersistentVolumeClaimRetentionPolicy says what happens to the nodes' volumes, the
	// PersistentVolumeClaims data-<name>-sts-<ordinal>, when the network is deleted
	// (whenDeleted) and when it scales down (whenScaled): Retain keeps them, Delete
	// deletes them. Both default to Retain, as a StatefulSet's do. It may change at any
	// time and applies to the volumes that exist then.
	// +kubebuilder:default={whenDeleted: Retain, whenScaled: Retain}
	// +kubebuilder:validation:XValidation:rule="!has(self.whenDeleted) || self.whenDeleted in ['Retain', 'Delete']",message="spec.persistentVolumeClaimRetentionPolicy.whenDeleted must be Retain or Delete"
	// +kubebuilder:validation:XValidation:rule="!has(self.whenScaled) || self.whenScaled in ['Retain', 'Delete']",message="spec.persistentVolumeClaimRetentionPolicy.whenScaled must be Retain or Delete"
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=spec,displayName="Volume retention",xDescriptors={"urn:alm:descriptor:com.tectonic.ui:advanced"}
	PersistentVolumeClaimRetentionPolicy *appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy `json:"persistentVolumeClaimRetentionPolicy,omitempty"`

	// PodManagementPolicy is the StatefulSet's: OrderedReady (the default) starts node N
	// once node N-1 is ready and replaces them one at a time; Parallel starts and
	// stops them all at once, which brings a large network up sooner. It cannot be
	// changed once set, as a StatefulSet's cannot.
	// +kubebuilder:default=OrderedReady
	// +kubebuilder:validation:Enum=OrderedReady;Parallel
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.podManagementPolicy is immutable, as the StatefulSet's is: create a new network for another policy"
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=spec,displayName="Pod management policy",xDescriptors={"urn:alm:descriptor:com.tectonic.ui:select:OrderedReady","urn:alm:descriptor:com.tectonic.ui:select:Parallel","urn:alm:descriptor:com.tectonic.ui:advanced"}
	PodManagementPolicy appsv1.PodManagementPolicyType `json:"podManagementPolicy,omitempty"`

	// Mining is what the operator mines: up to a height, every interval, by which nodes,
	// to which address. Regtest only. Unset, the operator mines nothing.
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=spec,displayName="Mining",xDescriptors={"urn:alm:descriptor:com.tectonic.ui:advanced"}
	Mining *BitcoinNetworkMining `json:"mining,omitempty"`

	// Partitions split the network into groups of node ordinals, e.g. [[0, 1], [2, 3]]:
	// the operator wires each group apart and keeps the groups from connecting. Nodes in
	// no group form one more group; ordinals at or above spec.nodes are ignored. Removing
	// the partitions heals the network. Regtest only.
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:XValidation:rule="self.all(g, g.all(o, self.exists_one(h, o in h)))",message="spec.partitions must list each ordinal at most once"
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=spec,displayName="Partitions",xDescriptors={"urn:alm:descriptor:com.tectonic.ui:advanced"}
	Partitions []PartitionGroup `json:"partitions,omitempty"`
}

// PartitionGroup is one group of spec.partitions: the ordinals of nodes that stay
// connected to each other and to no node of another group.
// +kubebuilder:validation:MaxItems=100
// +listType=set
type PartitionGroup []NodeOrdinal

// NodeOrdinal is the ordinal of a node of the network, its StatefulSet pod's index.
// +kubebuilder:validation:Minimum=0
type NodeOrdinal int32

// BitcoinNetworkMining is what the operator mines on a regtest network.
type BitcoinNetworkMining struct {
	// MinHeight is the height the best chain is mined to, at least (101 makes the first
	// coinbase spendable). Raising it mines the difference once; lowering it mines
	// nothing.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=spec,displayName="Minimum height",xDescriptors={"urn:alm:descriptor:com.tectonic.ui:number"}
	MinHeight int64 `json:"minHeight,omitempty"`

	// Interval is how often one more block is mined, a duration of at least 1s, e.g. 10s.
	// Unset, nothing is mined beyond minHeight.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="spec.mining.interval must be at least 1s"
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=spec,displayName="Interval",xDescriptors={"urn:alm:descriptor:com.tectonic.ui:text"}
	Interval *metav1.Duration `json:"interval,omitempty"`

	// Nodes are the ordinals of the nodes that mine. Without partitions they take turns;
	// with partitions each group is mined by its first listed node, and a group with none
	// listed does not mine. Ordinals at or above spec.nodes are ignored.
	// +kubebuilder:default={0}
	// +kubebuilder:validation:MaxItems=100
	// +listType=set
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=spec,displayName="Mining nodes",xDescriptors={"urn:alm:descriptor:com.tectonic.ui:advanced"}
	Nodes []NodeOrdinal `json:"nodes,omitempty"`

	// Address is the regtest address the coinbase pays. Unset, the operator generates a
	// key into the Secret <name>-mining-key and mines to its P2WPKH address.
	// +kubebuilder:validation:MaxLength=90
	// +kubebuilder:validation:XValidation:rule="self.matches('^(bcrt1[02-9ac-hj-np-z]{8,86}|[mn2][1-9A-HJ-NP-Za-km-z]{25,34})$')",message="spec.mining.address must be a regtest address: bcrt1... or a base58 address starting with m, n or 2"
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=spec,displayName="Coinbase address",xDescriptors={"urn:alm:descriptor:com.tectonic.ui:text"}
	Address string `json:"address,omitempty"`
}

// BitcoinNetworkNode is one node of a network as its pod shows it.
type BitcoinNetworkNode struct {
	// Ordinal is the node's index, 0 to nodes-1, the ordinal of its StatefulSet pod.
	Ordinal int32 `json:"ordinal"`
	// Ready is true when bitcoind answers RPC requests (the pod's Ready condition).
	Ready bool `json:"ready"`
	// IP is the pod's IP address, empty until the pod has one.
	IP string `json:"ip"`
	// NodeName is the name of the node's pod.
	NodeName string `json:"nodeName"`
	// DNSName is the node's name in cluster DNS, <pod>.<headless service>.<namespace>.svc.
	DNSName string `json:"dnsName"`
	// Peers is the number of P2P connections the node last reported (getpeerinfo), to
	// nodes of the network or beyond. Unset until the operator has reached the node.
	// +optional
	Peers *int32 `json:"peers,omitempty"`
	// Blocks is the height of the node's best chain when the operator last asked
	// (getblockchaininfo). Unset until the operator has reached the node.
	// +optional
	Blocks *int64 `json:"blocks,omitempty"`
	// BestBlockHash is the hash of the node's best block when the operator last asked.
	// +optional
	BestBlockHash string `json:"bestBlockHash,omitempty"`
	// Subversion is the node's user agent, e.g. /Satoshi:28.1.0/ (getnetworkinfo, asked
	// once per pod and restart).
	// +optional
	Subversion string `json:"subversion,omitempty"`
	// InboundPeers is the number of P2P connections other nodes opened to this one.
	// +optional
	InboundPeers *int32 `json:"inboundPeers,omitempty"`
	// OutboundPeers is the number of P2P connections this node opened.
	// +optional
	OutboundPeers *int32 `json:"outboundPeers,omitempty"`
	// Reorgs counts the times the operator saw the node's best chain drop blocks it had.
	// +optional
	Reorgs int32 `json:"reorgs,omitempty"`
}

// BitcoinNetworkStatus is the network as the operator last observed it. Several
// controllers write it with server-side apply, each under its own field manager and
// owning its own fields and condition types; see docs/design.md.
type BitcoinNetworkStatus struct {
	// ObservedGeneration is the generation of the spec that the network's objects were
	// last applied for.
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=status,displayName="Observed generation",xDescriptors={"urn:alm:descriptor:text"}
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Replicas is the number of node pods that exist.
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=status,displayName="Pods",xDescriptors={"urn:alm:descriptor:com.tectonic.ui:podCount"}
	Replicas int32 `json:"replicas,omitempty"`

	// ReadyNodes is the number of nodes that are ready.
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=status,displayName="Ready nodes",xDescriptors={"urn:alm:descriptor:text"}
	ReadyNodes int32 `json:"readyNodes,omitempty"`

	// Selector is the label selector of the nodes' pods, for the scale subresource.
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=status,displayName="Pod selector",xDescriptors={"urn:alm:descriptor:text"}
	Selector string `json:"selector,omitempty"`

	// SecretName is the Secret that holds the nodes' RPC credentials: spec.secret, or
	// the one the operator generated.
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=status,displayName="RPC credentials Secret",xDescriptors={"urn:alm:descriptor:io.kubernetes:Secret"}
	SecretName string `json:"secretName,omitempty"`

	// Image is the Bitcoin Core image the nodes run: spec.image, or the operator's
	// default image when the network was first reconciled without one. It stays while
	// spec.image is unset, so that an operator upgrade with another default never rolls
	// the nodes by itself.
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=status,displayName="Image",xDescriptors={"urn:alm:descriptor:text"}
	Image string `json:"image,omitempty"`

	// Nodes lists the nodes that have a pod, in ordinal order.
	// +listType=map
	// +listMapKey=ordinal
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=status,displayName="Nodes",xDescriptors={"urn:alm:descriptor:text"}
	Nodes []BitcoinNetworkNode `json:"nodes,omitempty"`

	// Mining is what the operator mined: the address the coinbase pays and the height
	// reached, refreshed with the peer rounds.
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=status,displayName="Mining",xDescriptors={"urn:alm:descriptor:text"}
	Mining *BitcoinNetworkMiningStatus `json:"mining,omitempty"`

	// Conditions are the network's conditions: Available (every requested node is
	// ready), Connected (the ready nodes form one P2P network, one per group while
	// partitioned), Synced (the ready nodes share one best block), Partitioned (the
	// nodes are split as spec.partitions asks) and Degraded (something needs the user's attention; the
	// message says what).
	// +listType=map
	// +listMapKey=type
	// +optional
	// +operator-sdk:csv:customresourcedefinitions:type=status,displayName="Conditions",xDescriptors={"urn:alm:descriptor:io.kubernetes.conditions"}
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// BitcoinNetworkMiningStatus is what the operator mined.
type BitcoinNetworkMiningStatus struct {
	// Address is the address the coinbase pays: spec.mining.address or the one of the
	// key in <name>-mining-key.
	// +optional
	Address string `json:"address,omitempty"`
	// Height is the highest best-chain height the mining nodes reported.
	// +optional
	Height *int64 `json:"height,omitempty"`
}

// Condition types of a BitcoinNetwork.
const (
	// ConditionAvailable is True when every node spec.nodes asks for (ordinals 0 to
	// nodes-1) is ready.
	ConditionAvailable = "Available"
	// ConditionDegraded is True when the network cannot be brought to its spec without
	// the user's help.
	ConditionDegraded = "Degraded"
	// ConditionConnected is True when the P2P connections the ready nodes report link
	// them all into one network.
	ConditionConnected = "Connected"
	// ConditionSynced is True when every ready node reports the same best block.
	ConditionSynced = "Synced"
	// ConditionPartitioned is True while the nodes are split as spec.partitions asks.
	ConditionPartitioned = "Partitioned"
)

// BitcoinNetwork is a network of Bitcoin Core nodes, one StatefulSet pod each.
//
// The name becomes part of the StatefulSet's name (<name>-sts), the headless Service's
// (<name>-svc) and every pod's; the StatefulSet controller labels each pod with
// "<name>-sts-<hash of up to 10 characters>", which must fit in 63 characters.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +operator-sdk:csv:customresourcedefinitions:displayName="Bitcoin Network",resources={{StatefulSet,v1,"<name>-sts"},{Service,v1,"<name>-svc"},{NetworkPolicy,v1,"<name>-netpol"},{Pod,v1,"<name>-sts-<ordinal>"},{Secret,v1,"status.secretName"},{Secret,v1,"<name>-mining-key"}}
// +kubebuilder:subresource:scale:specpath=.spec.nodes,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:shortName=btcnet,categories=bitcoin
// +kubebuilder:printcolumn:name="Nodes",type=integer,JSONPath=`.spec.nodes`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyNodes`
// +kubebuilder:printcolumn:name="Available",type=string,JSONPath=`.status.conditions[?(@.type=="Available")].status`
// +kubebuilder:printcolumn:name="Connected",type=string,JSONPath=`.status.conditions[?(@.type=="Connected")].status`
// +kubebuilder:printcolumn:name="Synced",type=string,JSONPath=`.status.conditions[?(@.type=="Synced")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 48",message="metadata.name must be at most 48 characters: the StatefulSet <name>-sts labels its pods with <name>-sts-<hash of up to 10 characters>, which must fit in 63"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS-1035 label (lower case letters, digits and '-', starting with a letter), since the headless Service <name>-svc must be one"
type BitcoinNetwork struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   BitcoinNetworkSpec   `json:"spec"`
	Status BitcoinNetworkStatus `json:"status,omitempty"`
}

// BitcoinNetworkList is a list of BitcoinNetworks.
// +kubebuilder:object:root=true
type BitcoinNetworkList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BitcoinNetwork `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BitcoinNetwork{}, &BitcoinNetworkList{})
}
