import { describe, expect, it } from 'vitest';

describe('runtime', () => {
  it('runs on the same Node major as the Lambda runtime (nodejs24.x)', () => {
    expect(process.versions.node.split('.')[0]).toBe('24');
  });
});
