import { describe, expect, it } from 'vitest';
import { editDistance, nearestName } from '../../infra/did-you-mean.js';

describe('editDistance', () => {
  it.each([
    ['', '', 0],
    ['', 'abc', 3],
    ['abc', '', 3],
    ['principal', 'principals', 1],
    ['principals', 'principal', 1],
    ['schedule', 'shcedule', 1], // a swap of neighbours is one edit
    ['kitten', 'sitting', 3],
    ['ca', 'abc', 3], // optimal string alignment: no edit of a swapped pair
    ['pattern', 'pattern', 0],
  ])('%j → %j is %i', (a, b, distance) => {
    expect(editDistance(a, b)).toBe(distance);
    expect(editDistance(b, a)).toBe(distance);
  });
});

describe('nearestName', () => {
  const KNOWN = ['principals', 'principalPattern', 'pattern', 'schedule'];

  it('picks the nearest name, ignoring case and separators', () => {
    expect(nearestName('principal', KNOWN)).toBe('principals');
    expect(nearestName('PRINCIPAL-PATTERN', KNOWN)).toBe('principalPattern');
    expect(nearestName('shedule', KNOWN)).toBe('schedule');
  });

  it('takes a name that holds the given one, or is held by it (4 characters or more)', () => {
    expect(nearestName('patternx', KNOWN)).toBe('pattern');
    expect(nearestName('sched', KNOWN)).toBe('schedule');
    expect(nearestName('ule', KNOWN)).toBeUndefined();
  });

  it('breaks ties by the order of the known names', () => {
    expect(nearestName('ab', ['ax', 'ay'])).toBe('ax');
  });

  it('gives nothing when no name is near', () => {
    expect(nearestName('region', KNOWN)).toBeUndefined();
    expect(nearestName('', KNOWN)).toBeUndefined();
  });
});
