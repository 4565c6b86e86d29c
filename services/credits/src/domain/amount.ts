// Money helpers live with the contracts (every service reads amounts); credits keeps its name for them.
export * from '@allot/contracts/amount';
