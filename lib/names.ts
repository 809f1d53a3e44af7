// The names people give weft's objects and nodes. Node, network, endpoint and alias names may
// hold dots (`<name>.<network>` is looked up as a whole); a service name is a
// single DNS label, since `<service>` and `tasks.<service>` are looked up
// label by label. The same rules are checked by the CLI (to name the flag),
// the agent (every API request), the replicated-object filter (remote
// entries) and the load balancer (before a name goes into an nft comment).
// A node's name (`--name`, sent when it joins) follows the object rule.
// Names a container runtime sends (CNI, Docker) are checked against the same
// patterns, so a name one entry point accepts is accepted by all.

/**
 * The family every name here belongs to: letters, digits, "_", "-" and (unless `dots` is
 * false) ".", starting with a letter or digit, at most `max` characters. With its rule in
 * words, for error messages.
 */
export function namePattern(max: number, dots = true): { pattern: RegExp; rule: string } {
  const rest = dots ? '[A-Za-z0-9_.-]' : '[A-Za-z0-9_-]';
  return {
    pattern: new RegExp(`^[A-Za-z0-9]${rest}{0,${max - 1}}$`),
    rule: `1-${max} letters, digits, "_", ${dots ? '".", ' : ''}"-", starting with a letter or digit`,
  };
}

const objectName = namePattern(63);
export const OBJECT_NAME = objectName.pattern;
export const OBJECT_NAME_RULE = objectName.rule;

const serviceName = namePattern(63, false);
export const SERVICE_NAME = serviceName.pattern;
export const SERVICE_NAME_RULE = `${serviceName.rule} (it is a DNS label)`;

/** CNI 1.0: a container ID is letters, digits, "_", ".", "-", starting with a letter or digit. */
const containerId = namePattern(255);
export const CONTAINER_ID = containerId.pattern;
export const CONTAINER_ID_RULE = containerId.rule;

/** CNI 1.0: a network configuration's name follows the same rule as a container ID. */
export const CNI_NETWORK_NAME = containerId.pattern;
export const CNI_NETWORK_NAME_RULE = containerId.rule;

/**
 * An interface name inside a sandbox, as the kernel takes it (IFNAMSIZ - 1 characters) and
 * `ip` parses it: no "/", ":" nor whitespace, and no leading "." or "-" (so neither "." nor
 * ".." nor something `ip` reads as an option). Checked by the API, the CNI plugin and the data plane.
 */
export const INTERFACE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;
export const INTERFACE_NAME_RULE = '1-15 letters, digits, "_", ".", "-", starting with a letter, digit or "_"';
