#!/usr/bin/perl
# SPDX-License-Identifier: MIT
# Writes a large, random, GeoIP2-City-shaped MaxMind DB for benchmarks and tests.
#
# Usage: perl bench/make-geo-db.pl NETWORKS OUT.mmdb [SEED [RECORD_SIZE]]
#
# About NETWORKS networks (a wider network split by a narrower one inserted
# into it counts once per piece), four in five IPv4 (/8 to /30, mostly /16 to
# /24) and the rest IPv6 (/20 to /64), sharing about NETWORKS / 20 distinct
# records as real City databases share theirs: 60 countries on six continents,
# most records with a subdivision and a location near the country, some with
# only registered_country, no location, or odd values (lower case, codes too
# long, a latitude out of range) that a reader must treat as the test database
# does.  IPv4 is aliased into ::ffff:0:0/96 as in MaxMind's files.  The same
# NETWORKS and SEED (default 1) give the same bytes.  RECORD_SIZE is the
# search tree's, 24, 28 (default, as MaxMind's City files) or 32.  Needs
# Debian's libmaxmind-db-writer-perl.
use strict;
use warnings;

use MaxMind::DB::Writer::Tree;

my ($count, $out, $seed, $record_size) = @ARGV;
die "usage: perl bench/make-geo-db.pl NETWORKS OUT.mmdb [SEED [RECORD_SIZE]]\n"
    unless defined $out && $count =~ /^\d+$/ && $count > 0;
$seed //= 1;
$record_size //= 28;
die "make-geo-db.pl: RECORD_SIZE is 24, 28 or 32\n" unless $record_size =~ /^(24|28|32)$/;

# Perl's rand() differs between builds; a small generator of our own keeps the
# output the same everywhere (a 32-bit xorshift).
my $state = ($seed * 2654435761 + 1) & 0xffffffff;
$state ||= 1;
sub rnd32 {
	$state ^= ($state << 13) & 0xffffffff;
	$state ^= $state >> 17;
	$state ^= ($state << 5) & 0xffffffff;
	return $state;
}
sub rnd { return rnd32() % $_[0]; }    # 0 .. n-1
sub unit { return rnd32() / 4294967296; }

# Country, continent, rough centre, a few subdivision codes.
my @countries = (
	[ 'US', 'NA', 39.8,  -98.6, [qw(CA TX NY FL VA WA IL OR GA NJ)] ],
	[ 'CA', 'NA', 56.1,  -106.3, [qw(ON QC BC AB)] ],
	[ 'MX', 'NA', 23.6,  -102.6, [qw(CMX JAL NLE)] ],
	[ 'BR', 'SA', -14.2, -51.9, [qw(SP RJ MG)] ],
	[ 'AR', 'SA', -38.4, -63.6, [qw(B C)] ],
	[ 'CL', 'SA', -35.7, -71.5, [qw(RM VS)] ],
	[ 'CO', 'SA', 4.6,   -74.3, [qw(DC ANT)] ],
	[ 'PE', 'SA', -9.2,  -75.0, [qw(LIM)] ],
	[ 'DE', 'EU', 51.2,  10.4, [qw(HE BE BY NW HH)] ],
	[ 'FR', 'EU', 46.2,  2.2, [qw(IDF ARA PAC)] ],
	[ 'GB', 'EU', 55.4,  -3.4, [qw(ENG SCT WLS NIR)] ],
	[ 'NL', 'EU', 52.1,  5.3, [qw(NH ZH UT)] ],
	[ 'IT', 'EU', 41.9,  12.6, [qw(62 25 21)] ],
	[ 'ES', 'EU', 40.5,  -3.7, [qw(MD CT AN)] ],
	[ 'PL', 'EU', 51.9,  19.1, [qw(14 12)] ],
	[ 'SE', 'EU', 60.1,  18.6, [qw(AB O)] ],
	[ 'CH', 'EU', 46.8,  8.2, [qw(ZH GE)] ],
	[ 'AT', 'EU', 47.5,  14.6, [qw(9 5)] ],
	[ 'BE', 'EU', 50.5,  4.5, [qw(BRU VLG)] ],
	[ 'IE', 'EU', 53.4,  -8.2, [qw(L D)] ],
	[ 'PT', 'EU', 39.4,  -8.2, [qw(11 13)] ],
	[ 'CZ', 'EU', 49.8,  15.5, [qw(10)] ],
	[ 'FI', 'EU', 61.9,  25.7, [qw(18)] ],
	[ 'NO', 'EU', 60.5,  8.5, [qw(03)] ],
	[ 'DK', 'EU', 56.3,  9.5, [qw(84)] ],
	[ 'RO', 'EU', 45.9,  25.0, [qw(B)] ],
	[ 'UA', 'EU', 48.4,  31.2, [qw(30)] ],
	[ 'RU', 'EU', 61.5,  105.3, [qw(MOW SPE)] ],
	[ 'TR', 'AS', 39.0,  35.2, [qw(34 06)] ],
	[ 'IL', 'AS', 31.0,  34.9, [qw(TA)] ],
	[ 'AE', 'AS', 23.4,  53.8, [qw(DU AZ)] ],
	[ 'SA', 'AS', 23.9,  45.1, [qw(01)] ],
	[ 'IN', 'AS', 20.6,  79.0, [qw(MH KA DL TN)] ],
	[ 'CN', 'AS', 35.9,  104.2, [qw(BJ SH GD ZJ)] ],
	[ 'HK', 'AS', 22.3,  114.2, [] ],
	[ 'TW', 'AS', 23.7,  121.0, [qw(TPE)] ],
	[ 'JP', 'AS', 36.2,  138.3, [qw(13 27 23)] ],
	[ 'KR', 'AS', 35.9,  127.8, [qw(11 26)] ],
	[ 'SG', 'AS', 1.35,  103.8, [] ],
	[ 'MY', 'AS', 4.2,   102.0, [qw(14)] ],
	[ 'TH', 'AS', 15.9,  101.0, [qw(10)] ],
	[ 'VN', 'AS', 14.1,  108.3, [qw(SG HN)] ],
	[ 'ID', 'AS', -0.8,  113.9, [qw(JK JB)] ],
	[ 'PH', 'AS', 12.9,  121.8, [qw(00)] ],
	[ 'PK', 'AS', 30.4,  69.3, [qw(PB SD)] ],
	[ 'BD', 'AS', 23.7,  90.4, [qw(13)] ],
	[ 'AU', 'OC', -25.3, 133.8, [qw(NSW VIC QLD WA)] ],
	[ 'NZ', 'OC', -40.9, 174.9, [qw(AUK WGN)] ],
	[ 'FJ', 'OC', -17.7, 178.1, [qw(C)] ],
	[ 'ZA', 'AF', -30.6, 22.9, [qw(GP WC)] ],
	[ 'NG', 'AF', 9.1,   8.7, [qw(LA FC)] ],
	[ 'EG', 'AF', 26.8,  30.8, [qw(C)] ],
	[ 'KE', 'AF', -0.02, 37.9, [qw(30)] ],
	[ 'MA', 'AF', 31.8,  -7.1, [qw(04)] ],
	[ 'GH', 'AF', 7.9,   -1.0, [qw(AA)] ],
	[ 'TZ', 'AF', -6.4,  34.9, [qw(02)] ],
	[ 'ET', 'AF', 9.1,   40.5, [qw(AA)] ],
	[ 'SN', 'AF', 14.5,  -14.5, [qw(DK)] ],
	[ 'AQ', 'AN', -75.3, 0.0, [] ],
	[ 'XK', 'EU', 42.6,  20.9, [] ],
);

my %types = (
	accuracy_radius    => 'uint16',
	city               => 'map',
	code               => 'utf8_string',
	continent          => 'map',
	country            => 'map',
	en                 => 'utf8_string',
	geoname_id         => 'uint32',
	iso_code           => 'utf8_string',
	latitude           => 'double',
	location           => 'map',
	longitude          => 'double',
	names              => 'map',
	registered_country => 'map',
	subdivisions       => [ 'array', 'map' ],
	time_zone          => 'utf8_string',
);

# The distinct records.  Most are ordinary City records; one in twenty is one
# of the shapes a reader must handle with care.
sub record {
	my ($i) = @_;
	my $c = $countries[ rnd(scalar @countries) ];
	my ($cc, $cont, $lat, $lon, $subs) = @$c;
	my %r = (
		continent          => { code     => $cont, names => { en => "continent $cont" } },
		country            => { iso_code => $cc,   names => { en => "country $cc" } },
		registered_country => { iso_code => $cc },
		city               => { geoname_id => 1000000 + $i, names => { en => "city $i" } },
		location           => {
			latitude        => 0.0 + sprintf('%.4f', $lat + (unit() - 0.5) * 8),
			longitude       => 0.0 + sprintf('%.4f', $lon + (unit() - 0.5) * 8),
			accuracy_radius => 5 + rnd(500),
		},
	);
	$r{location}{latitude} = 89.9 if $r{location}{latitude} > 90;
	$r{location}{latitude} = -89.9 if $r{location}{latitude} < -90;
	$r{location}{longitude} -= 360 if $r{location}{longitude} > 180;
	$r{location}{longitude} += 360 if $r{location}{longitude} < -180;
	if (@$subs && rnd(10) < 8) {
		my @s = ({ iso_code => $subs->[ rnd(scalar @$subs) ] });
		push @s, { iso_code => 'X' . rnd(99) } if rnd(4) == 0;    # a second level
		$r{subdivisions} = \@s;
	}
	# The first records take each odd shape once, so that even a small file has them all.
	my $odd = $i < 16 ? $i % 8 : rnd(20) == 0 ? rnd(8) : -1;
	if ($odd == 0) {    # only where the network is registered
		delete $r{country};
		$r{registered_country} = { iso_code => $countries[ rnd(scalar @countries) ][0] };
	} elsif ($odd == 1) {    # no location (a Country database's shape)
		delete $r{location};
		delete $r{city};
	} elsif ($odd == 2) {    # lower case codes
		$r{country}{iso_code} = lc $cc;
		$r{continent}{code} = lc $cont;
		$r{subdivisions}[0]{iso_code} = lc $r{subdivisions}[0]{iso_code} if $r{subdivisions};
	} elsif ($odd == 3) {    # a country code of the wrong length
		$r{country}{iso_code} = ($i >> 3) % 2 ? 'USA' : 'D';
	} elsif ($odd == 4) {    # a latitude or a longitude out of range, or one missing
		my $k = ($i >> 3) % 3;
		if ($k == 0) {
			$r{location}{latitude} = 91.5;
		} elsif ($k == 1) {
			$r{location}{longitude} = -180.5;
		} else {
			delete $r{location}{longitude};
		}
	} elsif ($odd == 5) {    # an empty subdivisions array, no continent
		$r{subdivisions} = [];
		delete $r{continent};
	} elsif ($odd == 6) {    # nothing usable at all
		%r = (city => { names => { en => "nowhere $i" } });
	} elsif ($odd == 7) {    # a subdivision code too long, or of other characters
		$r{subdivisions} = [ { iso_code => ($i >> 3) % 2 ? 'ABCD' : 'A-B' } ];
	}
	return \%r;
}

my $nrec = int($count / 20) || 1;
$nrec = 16 if $nrec < 16 && $count >= 16;
my @records = map { record($_) } 0 .. $nrec - 1;

my $tree = MaxMind::DB::Writer::Tree->new(
	ip_version               => 6,
	record_size              => $record_size,
	database_type            => 'GeoIP2-City',
	languages                => ['en'],
	description              => { en => "gslbd benchmark City database ($count networks, seed $seed)" },
	remove_reserved_networks => 0,
	alias_ipv6_to_ipv4       => 1,
	map_key_type_callback    => sub {
		my $t = $types{ $_[0] };
		die "make-geo-db.pl: no type for map key '$_[0]'\n" unless defined $t;
		return $t;
	},
);
$tree->_set_build_epoch(1767225600);

# IPv4 prefix lengths, mostly /16 to /24 as in real databases.
my @v4len = (8, 10, 12, 13, 14, 15, (16) x 3, (17) x 2, (18) x 3, (19) x 3, (20) x 4, (21) x 4,
	(22) x 6, (23) x 5, (24) x 14, 25, 26, 27, 28, 29, 30);
my @v6len = (20, 24, 28, 29, 32, (32) x 2, 36, 40, (44) x 2, (48) x 5, 52, (56) x 2, 60, 64);

my @nets;
for my $n (0 .. $count - 1) {
	my $rec = $records[ rnd($nrec) ];
	if (rnd(5)) {
		my $len = $v4len[ rnd(scalar @v4len) ];
		# Keep clear of ::/8-style trouble: IPv4 from 1.0.0.0 to 223.255.255.255.
		my $a = (1 + rnd(223)) << 24 | rnd(1 << 24);
		$a &= (0xffffffff << (32 - $len)) & 0xffffffff;
		push @nets, [ sprintf('%d.%d.%d.%d/%d', $a >> 24, ($a >> 16) & 255, ($a >> 8) & 255,
			$a & 255, $len), $len, $rec ];
	} else {
		my $len = $v6len[ rnd(scalar @v6len) ];
		# Global unicast, clear of 2002::/16 (6to4, aliased to IPv4 above).
		my @w = (0x2400 + rnd(0x1b00), rnd(65536), rnd(65536), rnd(65536));
		my $bits = join('', map { sprintf('%016b', $_) } @w);
		substr($bits, $len) = '0' x (64 - $len);
		my @h = map { sprintf('%x', oct("0b" . substr($bits, $_ * 16, 16))) } 0 .. 3;
		push @nets, [ join(':', @h) . '::/' . $len, 96 + $len, $rec ];
	}
}
# The last insert wins where networks overlap: the widest first, so a narrower
# one carves its part out of a wider one (as make-test-db.pl does).
for my $n (sort { $a->[1] <=> $b->[1] } @nets) {
	$tree->insert_network($n->[0], $n->[2]);
}

my $tmp = "$out.tmp";
open(my $fh, '>:raw', $tmp) or die "make-geo-db.pl: $tmp: $!\n";
$tree->write_tree($fh);
close($fh) or die "make-geo-db.pl: $tmp: $!\n";
rename($tmp, $out) or die "make-geo-db.pl: $out: $!\n";
printf "%s: %d networks, %d distinct records, seed %s\n", $out, $count, $nrec, $seed;
