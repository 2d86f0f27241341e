/**
 * Option checking shared by every layer. Internal: not part of any public
 * entry point, which is why it lives beside the errors rather than in their
 * index (the public surface, re-exported whole by each layer's index).
 */
import { ConfigError } from './index.js';

/**
 * Throw a {@link ConfigError} naming the option unless `ok`.
 * @internal
 */
export function checkOption(ok: boolean, name: string, requirement: string): asserts ok {
  if (!ok) throw new ConfigError('GS_ERR_INVALID_OPTION', `${name} ${requirement}`);
}
